"""Flax NNX layers of AKOrN, by concern (every public name is also importable from here):

  basic       PyTorch-default init, conv / linear, 2-D positional encoding, norms, residual blocks
  coupling    the couplings J: k x k convolution, attention with GTA
  oscillator  Ω, stimulus normalisation, the Kuramoto layer `KLayer`, `ReadOut`, the initial
              state and the stacking rule `run_layers`
"""

from akorn_jax.layers.basic import (FF, BatchNorm, Buffer, Dtype, NormReLUConv, Residual,
                                    as_tuple, conv, linear, norm_layer, posenc2d, torch_uniform)
from akorn_jax.layers.coupling import Attention, CouplingConv, coupling_conv, gta_init
from akorn_jax.layers.oscillator import (KLayer, Omega, ReadOut, ScaleAndBias, initial_state,
                                         run_layers, stimulus_norm)
