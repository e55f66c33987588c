"""Prepares a dataset as array_record once (no TensorFlow needed).

  akorn-prepare-data --dataset=tetrominoes_generated/full
  akorn-prepare-data --dataset=clevrtex/full --manual_dir=/data/clevrtex
  akorn-prepare-data --dataset=multi_object/clevr6 --manual_dir=/data/multi_object
  akorn-prepare-data --dataset=sudoku_satnet --manual_dir=/data/satnet
  akorn-prepare-data --dataset=sudoku_rrn --manual_dir=/data/sudoku-rrn

The list of datasets and what each manual directory must hold: akorn_jax/data/__init__.py and the
builder docstrings. Generated datasets are also prepared automatically on first use.
"""

from absl import app, flags

from akorn_jax import commands, data

_DATASET = flags.DEFINE_string("dataset", None, "name[/config], e.g. clevrtex/full.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data dir (default $AKORN_DATA_DIR or "
                                "~/.cache/akorn_jax/tfds).")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "folder with the original files.")


def main(argv):
  del argv
  name, _, config = _DATASET.value.partition("/")
  builder = data.prepare(name, config or None, data_dir=_DATA_DIR.value,
                         manual_dir=_MANUAL_DIR.value)
  for split, info in builder.info.splits.items():
    print(f"{builder.name}/{builder.builder_config.name if builder.builder_config else ''} "
          f"{split}: {info.num_examples} examples in {builder.data_dir}")


def cli() -> None:
  """The `akorn-prepare-data` command."""
  app.run(main, flags_parser=commands.parse_flags)


if __name__ == "__main__":
  cli()
