"""CIFAR-10 AKOrN (docs/models.md#cifar-akorn): three Kuramoto stages with strided transitions.

Each stage couples its oscillators by a convolution (the reference's default, "AKOrN^conv") or by
attention ("attn"); the paper's mixed variant "AKOrN^mix" is conv, conv, attn.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import layers
from akorn_jax.models.baselines import Block


class ClassifierAKOrN(nnx.Module):
  """AKOrN image classifier.

  Stage l has ch·2^l channels on an (imsize/2^l)² grid; between stages ONE stride-2 convolution
  is applied to both the oscillators x and the stimulus c (shared weights, docs/reference.md#quirks item 7).
  `connectivity` is one value or one per stage: "conv" (k x k convolution, k from `ksizes`) or
  "attn" (multi-head attention over the stage's grid, `heads` heads, GTA when `gta`). Readouts use
  BatchNorm, so call `model.train()` / `model.eval()` to switch between batch and running
  statistics.
  """

  def __init__(self, *, rngs: nnx.Rngs, n: int = 2, ch: int = 64, num_layers: int = 3,
               steps: int | Sequence[int] = 3, ksizes: Sequence[int] = (9, 7, 5), ro_ksize: int = 3,
               ro_n: int = 2, norm: str = "bn", c_norm: str | None = "gn", gamma: float = 1.0,
               use_omega: bool = True, init_omega: float = 1.0, global_omega: bool = True,
               learn_omega: bool = True, num_classes: int = 10,
               connectivity: str | Sequence[str] = "conv", heads: int = 8, gta: bool = True,
               imsize: int = 32, attn_impl: str | None = None, remat: bool = False, dtype=None,
               param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.steps = layers.as_tuple(steps, num_layers, "steps")
    ksizes = layers.as_tuple(ksizes, num_layers, "ksizes")
    chs = [ch * 2 ** i for i in range(num_layers)]
    couplings = layers.as_tuple(connectivity, num_layers, "connectivity")
    if imsize % 2 ** (num_layers - 1):
      raise ValueError(f"imsize ({imsize}) must be divisible by 2^(num_layers-1) = "
                       f"{2 ** (num_layers - 1)} (one stride-2 transition per later stage).")
    grids = [(imsize // 2 ** i,) * 2 for i in range(num_layers)]
    self.stem = layers.conv(3, ch, 3, use_bias=False, **kw)
    self.gamma = layers.Buffer(jnp.asarray(gamma, jnp.float32))
    self.transitions = nnx.List([layers.conv(chs[i - 1], chs[i], 3, stride=2, **kw)
                                 for i in range(1, num_layers)])
    self.klayers = nnx.List([
        layers.KLayer(c, n=n, connectivity=j, ksize=k, heads=heads, gta=gta, hw=grid,
                      c_norm=c_norm, use_omega=use_omega, init_omega=init_omega,
                      global_omega=global_omega, learn_omega=learn_omega, attn_impl=attn_impl,
                      remat=remat, **kw)
        for c, k, j, grid in zip(chs, ksizes, couplings, grids)])
    self.readouts = nnx.List([
        nnx.Sequential(layers.ReadOut(c, c, ro_n=ro_n, ksize=ro_ksize, **kw),
                       layers.Residual(layers.FF(c, c, c, ro_ksize, norm=norm, **kw)),
                       layers.NormReLUConv(c, c, ro_ksize, norm=norm, **kw))
        for c in chs])
    self.head = layers.linear(chs[-1], num_classes, **kw)

  def __call__(self, images: jax.Array, *, key: jax.Array | None = None,
               x_init: jax.Array | None = None, ensemble: int = 1,
               steps: Sequence[int] | int | None = None,
               return_states: bool = False) -> tuple[jax.Array, dict]:
    """Forward pass.

    Args:
      images: [B, H, W, 3] in [0, 1].
      key: PRNG key for the random initial oscillators.
      x_init: [B, H, W, C] (the stem's output shape), the initial draw itself instead of key
        (deterministic forward; not with ensemble > 1).
      ensemble: average the logits of this many forward passes with independent x_init.
      steps: override T per stage.
      return_states: also return the oscillator states per stage.

    Returns:
      logits [B, classes] float32 and aux {"energies": per stage [T+1, B], "features": the
      pooled final readout [B, C] the head sees, "states"?}.
    """
    if ensemble > 1 and x_init is not None:
      raise ValueError(f"x_init fixes one forward pass; it cannot be combined with ensemble="
                       f"{ensemble}. Call the model once per initial state instead.")
    if ensemble > 1:
      outs = [self(images, key=k, steps=steps) for k in jax.random.split(key, ensemble)]
      return jnp.mean(jnp.stack([o[0] for o in outs]), axis=0), outs[0][1]
    steps = self.steps if steps is None else layers.as_tuple(steps, len(self.klayers), "steps")
    c = self.stem((images - 0.5) / 0.5).astype(jnp.float32)
    x = layers.initial_state(key, x_init, c.shape)
    _, c, aux = layers.run_layers(x, c, self.klayers, self.readouts, steps, gamma=self.gamma[...],
                                  return_states=return_states, transitions=self.transitions)
    aux["features"] = jnp.mean(c, axis=(1, 2))
    return self.head(aux["features"]).astype(jnp.float32), aux


class ViTClassifier(nnx.Module):
  """ViT baseline for CIFAR-10 (T = 1 Transformer blocks, no oscillators): our settings.

  Patchify (psize x psize conv) -> + learnable 2-D sinusoidal position maps -> `num_layers`
  pre-LN Transformer blocks (the object ViT's block, MLP 2·ch, GELU) -> LayerNorm -> mean over
  tokens -> Linear. Deterministic: `key` is accepted for the common interface and unused.
  """

  def __init__(self, *, rngs: nnx.Rngs, ch: int = 256, num_layers: int = 6, heads: int = 8,
               psize: int = 4, imsize: int = 32, mlp_ratio: int = 2, num_classes: int = 10,
               attn_impl: str | None = None, dtype=None, param_dtype=jnp.float32):
    if imsize % psize:
      raise ValueError(f"imsize ({imsize}) must be a multiple of psize ({psize}).")
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    grid = (imsize // psize,) * 2
    self.patchify = layers.conv(3, ch, psize, stride=psize, padding=0, **kw)
    self.pos_embed = nnx.Param(layers.posenc2d(ch, *grid))
    self.blocks = nnx.List([Block(ch, heads=heads, mlp_dim=mlp_ratio * ch, attn_impl=attn_impl,
                                  **kw) for _ in range(num_layers)])
    self.norm = nnx.LayerNorm(ch, epsilon=1e-5, rngs=rngs)
    self.head = layers.linear(ch, num_classes, **kw)

  def __call__(self, images: jax.Array, *, key: jax.Array | None = None,
               **unused) -> tuple[jax.Array, dict]:
    """images [B, H, W, 3] in [0, 1] -> (logits [B, classes] float32, {})."""
    del key, unused
    z = self.patchify((images - 0.5) / 0.5).astype(jnp.float32) + self.pos_embed[...]
    for block in self.blocks:
      z = block(z, 1)
    return self.head(jnp.mean(self.norm(z), axis=(1, 2))).astype(jnp.float32), {}
