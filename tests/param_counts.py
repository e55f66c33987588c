"""The one table of reference parameter counts: every experiment config of configs/ (file, `:arg`)
and the number of trainable parameters of its model at the paper's settings.

The counts are those of the reference implementation, with one documented difference: our Sudoku
AKOrN has no `x0` buffer-parameter (the reference's 2,982,412 includes an unused x0 of 81 x 512 =
41,472 values). The ResNet-18 row is the standard CIFAR ResNet-18 (the reference does not list it).
configs_test checks that every config builds a model of this size and that README.md's table of
models quotes exactly these numbers.
"""

PARAMS = {
    ("tetrominoes_akorn", None): 278_400,
    ("tetrominoes_akorn", "conv"): 613_888,
    ("dsprites_akorn", None): 302_976,
    ("dsprites_akorn", "conv"): 1_007_104,
    ("clevr_akorn", None): 1_167_104,
    ("clevr_akorn", "conv"): 4_049_920,
    ("clevrtex_akorn", None): 1_167_616,
    ("clevrtex_akorn", "L=2"): 1_760_256,
    ("clevrtex_akorn", "large"): 6_666_240,
    ("clevrtex_itrsa", None): 1_168_128,
    ("clevrtex_itrsa", "L=2"): 1_695_232,
    ("sudoku_akorn", None): 2_982_412 - 81 * 512,  # 2,940,940: no unused x0
    ("sudoku_itrsa", None): 2_155_017,
    ("sudoku_transformer", None): 16_874_505,
    ("cifar_akorn", None): 7_023_760,
    ("cifar_resnet18", None): 11_173_962,
}
