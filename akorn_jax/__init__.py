"""akorn_jax: Artificial Kuramoto Oscillatory Neurons (AKOrN, Miyato et al., ICLR 2025) in JAX.

The kernel is `akorn_jax.kuramoto`; models are built from configs (`akorn_jax.config_loader`), and
the commands akorn-train, akorn-evaluate, akorn-sudoku, akorn-benchmark and akorn-prepare-data are
the drivers of experiments/ (shipped as `akorn_jax.experiments`). See README.md.
"""

__version__ = "0.1.0"
