"""Non-oscillatory baselines: the object ViT/ItrSA (docs/models.md#object-baselines) and the Sudoku
ItrSA/Transformer
(docs/models.md#sudoku-baselines). "ItrSA" = the attention sub-layer of each block repeated T times
with tied weights;
T = 1 gives a plain Transformer/ViT."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import layers


class Block(nnx.Module):
  """z <- z + Attn(LN1 z) repeated T times, then z <- z + MLP(LN2 z) once."""

  def __init__(self, ch: int, *, heads: int, mlp_dim: int, rngs: nnx.Rngs, gta: bool = False,
               hw=None, attn_impl: str | None = None, dtype=None, param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.ln1 = nnx.LayerNorm(ch, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
    self.attn = layers.Attention(ch, heads=heads, gta=gta, hw=hw, attn_impl=attn_impl, **kw)
    self.ln2 = nnx.LayerNorm(ch, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
    self.mlp1 = layers.linear(ch, mlp_dim, **kw)
    self.mlp2 = layers.linear(mlp_dim, ch, **kw)

  def __call__(self, z: jax.Array, steps: int) -> jax.Array:
    z = jax.lax.fori_loop(0, steps, lambda _, z: z + self.attn(self.ln1(z)).astype(z.dtype), z)
    return z + self.mlp2(jax.nn.gelu(self.mlp1(self.ln2(z)), approximate=False)).astype(z.dtype)


class ObjectViT(nnx.Module):
  """ViT (T = 1) / ItrSA (T > 1) for object discovery with the AKOrN SimCLR head."""

  def __init__(self, *, rngs: nnx.Rngs, ch: int = 256, num_layers: int = 1, steps: int = 8,
               psize: int = 8, imsize: int = 128, heads: int = 8, gta: bool = False,
               attn_impl: str | None = None, dtype=None, param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    grid = (imsize // psize, imsize // psize)
    self.steps = steps
    self.patchify = layers.conv(3, ch, psize, stride=psize, padding=0, **kw)
    self.pos_embed = nnx.Param(layers.posenc2d(ch, *grid)) if not gta else None
    self.blocks = nnx.List([Block(ch, heads=heads, mlp_dim=2 * ch, gta=gta, hw=grid,
                                  attn_impl=attn_impl, **kw) for _ in range(num_layers)])
    self.norm = nnx.LayerNorm(ch, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
    self.head1 = layers.linear(ch, 4 * ch, **kw)
    self.head2 = layers.linear(4 * ch, ch, **kw)

  def __call__(self, images: jax.Array, *, key: jax.Array | None = None, steps: int | None = None,
               return_states: bool = False) -> tuple[jax.Array, dict]:
    """images [B, H, W, 3] in [0, 1] -> (z [B, C], {"features": [B, h, w, C]}). `key` is unused
    (deterministic model) and accepted for a uniform interface."""
    del key, return_states
    z = self.patchify((images - 0.5) / 0.5).astype(jnp.float32)
    if self.pos_embed is not None:
      z = z + self.pos_embed[...]
    for block in self.blocks:
      z = block(z, self.steps if steps is None else steps)
    feats = self.norm(z)
    z = self.head2(jax.nn.relu(self.head1(jnp.max(feats, axis=(1, 2)))))
    return z.astype(jnp.float32), {"features": feats}


class SudokuTransformer(nnx.Module):
  """Sudoku ItrSA (L = 1, T > 1) / Transformer (L = 8, T = 1) on 81 cell tokens."""

  def __init__(self, *, rngs: nnx.Rngs, ch: int = 512, num_layers: int = 1, steps: int = 16,
               heads: int = 8, attn_impl: str | None = None, dtype=None, param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.steps = steps
    self.embed = nnx.Embed(10, ch, embedding_init=jax.nn.initializers.normal(1.0), rngs=rngs,
                           param_dtype=param_dtype)
    self.pos_embed = nnx.Param(layers.posenc2d(ch, 9, 9).reshape(81, ch))
    self.blocks = nnx.List([Block(ch, heads=heads, mlp_dim=2 * ch, attn_impl=attn_impl, **kw)
                            for _ in range(num_layers)])
    self.norm = nnx.LayerNorm(ch, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
    self.out = layers.linear(ch, 9, **kw)

  def __call__(self, puzzle: jax.Array, *, key: jax.Array | None = None, steps: int | None = None,
               return_states: bool = False) -> tuple[jax.Array, dict]:
    """puzzle [B, 9, 9] int (0 = blank) -> (logits [B, 9, 9, 9], {}). `key` is unused."""
    del key, return_states
    z = self.embed(puzzle.reshape(puzzle.shape[0], 81).astype(jnp.int32)).astype(jnp.float32)
    z = z + self.pos_embed[...]
    for block in self.blocks:
      z = block(z, self.steps if steps is None else steps)
    return self.out(self.norm(z)).reshape(-1, 9, 9, 9).astype(jnp.float32), {}


class _BasicBlock(nnx.Module):
  """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN plus (projected) shortcut, then ReLU."""

  def __init__(self, in_ch: int, out_ch: int, stride: int, *, rngs: nnx.Rngs, dtype=None,
               param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.conv1 = layers.conv(in_ch, out_ch, 3, stride=stride, use_bias=False, **kw)
    self.bn1 = layers.norm_layer("bn", out_ch, rngs=rngs)
    self.conv2 = layers.conv(out_ch, out_ch, 3, use_bias=False, **kw)
    self.bn2 = layers.norm_layer("bn", out_ch, rngs=rngs)
    needs_proj = stride != 1 or in_ch != out_ch
    self.proj = nnx.Sequential(
        layers.conv(in_ch, out_ch, 1, stride=stride, padding=0, use_bias=False, **kw),
        layers.norm_layer("bn", out_ch, rngs=rngs)) if needs_proj else None

  def __call__(self, x: jax.Array) -> jax.Array:
    y = jax.nn.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return jax.nn.relu(y + (x if self.proj is None else self.proj(x)))


class ResNet18(nnx.Module):
  """The CIFAR ResNet-18 baseline (3x3 stem, no max-pool, 4 stages of 2 basic blocks, ~11.2M
  parameters): the non-oscillatory comparison of the paper's robustness/calibration study."""

  def __init__(self, *, rngs: nnx.Rngs, num_classes: int = 10, width: int = 64, dtype=None,
               param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.stem = layers.conv(3, width, 3, use_bias=False, **kw)
    self.bn = layers.norm_layer("bn", width, rngs=rngs)
    blocks, ch = [], width
    for stage in range(4):
      out = width * 2 ** stage
      for i in range(2):
        blocks.append(_BasicBlock(ch, out, 2 if (stage > 0 and i == 0) else 1, **kw))
        ch = out
    self.blocks = nnx.List(blocks)
    self.head = layers.linear(ch, num_classes, **kw)

  def __call__(self, images: jax.Array, *, key: jax.Array | None = None,
               **unused) -> tuple[jax.Array, dict]:
    """images [B, H, W, 3] in [0, 1] -> (logits [B, classes], {}). `key` is unused."""
    del key, unused
    x = jax.nn.relu(self.bn(self.stem((images - 0.5) / 0.5)))
    for block in self.blocks:
      x = block(x)
    return self.head(jnp.mean(x, axis=(1, 2))).astype(jnp.float32), {}
