#!/usr/bin/env bash
# Downloads into .whl/ the wheels (Python 3.12, x86-64) of the packages our code needs that the
# H200 device image lacks (as of 2026-11-30 it has jax 0.11.2, flax 0.12.10, optax, orbax, chex,
# numpy, scipy, pillow, absl, etils, protobuf, ...). Run here, once, from the repository root;
# `.whl/` is ignored by git (add `/.whl/` to .git/info/exclude) and travels with `carry: [".whl"]`.
# The device scripts install it into /tmp/site with --no-deps (tools/gpu/env.sh, the one place).
# Usage: bash tools/gpu/device_wheels.sh
set -eu
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
mkdir -p .whl
for p in array_record==0.8.6 dm-tree==0.1.10 docstring_parser==0.18.0 googleapis-common-protos==1.76.0 \
    grain==0.2.18 immutabledict==4.3.1 importlib_resources==7.1.0 ml_collections==1.1.0 \
    portpicker==1.6.0 simple-parsing==0.1.9 tensorboardX==2.6.5 tensorflow-datasets==4.9.10 \
    tensorflow-metadata==1.21.0 termcolor==3.3.0 toml==0.10.2 tzdata==2026.6; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp $PLAT -d .whl "$p"
done
python3 -m pip wheel -q --no-deps -w .whl promise==2.3   # sdist only on PyPI; pure Python
ls .whl
