"""Command-line plumbing shared by every akorn-* command (experiments/*.py): flag parsing with
one-line errors for config overrides, validation of the final config, quiet library logs.

  app.run(main, flags_parser=commands.parse_flags)
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence

from absl import flags, logging

from akorn_jax import config_loader


def flag_spec(argv: Sequence[str], name: str = "config") -> str | None:
  """The value of `--name=SPEC` (or `--name SPEC`) in `argv`, or None."""
  for i, a in enumerate(argv):
    if a.startswith(f"--{name}="):
      return a.split("=", 1)[1]
    if a == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def parse_flags(argv: Sequence[str], name: str = "config") -> list[str]:
  """absl's flag parsing for every command: `app.run(main, flags_parser=commands.parse_flags)`.

  Then: library INFO logs off unless --verbosity (or -v) was given; the config flag `name`, where
  the command has one, validated (`config_loader.validate`) after its overrides. An override of a
  key the config lacks, e.g. `--config.optim.lrr=1`, exits with one line naming the key and the
  nearest valid ones (ml_collections raises a bare AttributeError from deep inside). This runs
  before JAX is imported, so a typo costs a fraction of a second.
  """
  argv = list(argv)
  try:
    rest = flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:  # a misspelt leaf / a misspelt section
    spec = flag_spec(argv[1:], name)
    if spec is None:
      raise
    valid = _leaf_keys(config_loader.load(spec, check=False))
    for a in argv[1:]:
      key = a.split("=", 1)[0].removeprefix(f"--{name}.")
      if a.startswith(f"--{name}.") and key not in valid:
        section, _, leaf = key.partition(".")
        sections = sorted({v.split(".")[0] for v in valid if "." in v})
        if leaf and section not in sections:  # a misspelt section, e.g. --config.trian.x
          near = difflib.get_close_matches(section, sections, n=1)
          sys.exit(f"FATAL: --{name}.{key}: the config has no section {section!r}"
                   f"{f'; did you mean --{name}.{near[0]}.{leaf}?' if near else ''} Sections: "
                   f"{', '.join(sections)}.")
        near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
        sys.exit(f"FATAL: --{name}.{key}: the config has no key {key!r}"
                 f"{'; did you mean ' + ', '.join(near) + '?' if near else ''} "
                 f"Override only keys that {spec} defines.")
    raise SystemExit(f"FATAL: bad --{name} override: {e}") from e
  except (ValueError, flags.Error) as e:
    sys.exit(f"FATAL: {e}")
  quiet_unless_verbose()
  config = flags.FLAGS[name].value if name in flags.FLAGS else None
  if config is not None:
    try:
      config_loader.validate(config)
    except ValueError as e:
      sys.exit(f"FATAL: {e}")
  return rest


def quiet_unless_verbose() -> None:
  """absl (and so orbax's) INFO lines off unless the command line set --verbosity / -v.

  Our own progress and results are printed, not logged, so they stay visible.
  """
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


def _leaf_keys(config, prefix: str = "") -> list[str]:
  keys = []
  for k, v in config.items():
    keys += _leaf_keys(v, f"{prefix}{k}.") if hasattr(v, "items") else [prefix + k]
  return keys
