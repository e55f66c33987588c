"""Object-discovery datasets: offline generators and readers of the original releases
(docs/datasets.md#multi-object-datasets, docs/datasets.md#shapes).

Every dataset yields examples `{"image": uint8 [H, W, 3], "mask": uint8 [H, W]}`. Mask values:
0 = background, 1..K = object instance, and 255 = ignore where the source has overlapping objects
(only `shapes`). Evaluation converts 255 to -1, the reference's ignore label
(`akorn_jax.imageops.ignore_to_minus_one`).

Builders (all array_record, no TensorFlow; open them with `common.source` / `common.build`):

* `TetrominoesGenerated`, `DspritesGenerated`, `Shapes`: generated here from a seed, auto-preparable,
  configs `full` and `tiny`.
* `MultiObject` (configs `tetrominoes`, `multi_dsprites`, `clevr6`): the DeepMind multi-object-datasets
  TFRecords, read by the small pure-Python TFRecord/protobuf reader in `tfrecord`.
* `Clevrtex` (configs `full`, `outd`, `camo`): the CLEVRTex PNG release.

Real datasets are never downloaded: the user places the original files in a manual directory.
"""

from akorn_jax.data.objects.builders import (Clevrtex, ClevrtexConfig, DspritesGenerated,
                                             GeneratedConfig, MultiObject, MultiObjectConfig, Shapes,
                                             ShapesConfig, TetrominoesGenerated)
from akorn_jax.data.objects.generate import (SHAPES_SPLITS, SHAPES_TEMPLATES, TETROMINO_BLOCK,
                                             TETROMINO_COLOURS, TETROMINOES, generate_dsprites,
                                             generate_shapes, generate_tetrominoes,
                                             tetromino_templates)
from akorn_jax.data.objects.readers import load_clevrtex, process_multi_object
from akorn_jax.data.objects.tfrecord import masked_crc32c, parse_example, read_tfrecord
from akorn_jax.imageops import IGNORE
