# Sourced by the device scripts (h200_run.sh, h200_bench.sh): the one place that installs the
# wheels the device image lacks and points PYTHONPATH at them and at this checkout.
#   WHEELS  folder of wheels made by tools/gpu/device_wheels.sh (default .whl; "none": skip)
#   PY      the Python to use (default python3)
#   LOG     file that receives pip's output
# Installs once per machine into /tmp/site (pip --target, --no-deps, no network).
PY=${PY:-python3}
WHEELS=${WHEELS:-.whl}
if [ -d "$WHEELS" ] && [ ! -d /tmp/site ]; then
  if ! $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target /tmp/site "$WHEELS"/*.whl >>"${LOG:-/dev/stderr}" 2>&1; then
    echo "wheel install from $WHEELS failed (see ${LOG:-stderr})" >&2
    rm -rf /tmp/site
    exit 1
  fi
fi
if [ -d /tmp/site ]; then export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
