"""The reference's tied GTA matrices, as an optimiser setting (`config.optim.tie_gta`).

In the authors' attention, `mat_q`, `mat_k` and `mat_v` wrap one and the same tensor S and `mat_o`
wraps its transposed view (over the last two axes): four parameters sharing one storage. So in
their training q = k = v = oᵀ at every step, and each optimiser step applies four updates to S,
each computed by Adam from that parameter's own gradient with its own moment estimates (o's update
lands transposed):

    S <- S + u_q + u_k + u_v + u_oᵀ,     u_x = Adam_x(dL/d mat_x)

Our models hold four independent matrices (initialised tied: R, R, R, Rᵀ). `tie_gta` wraps any
optax transformation so that every GTA group receives exactly that combined update, which keeps the
four tied and reproduces the reference's trajectory; Adam still keeps four states, as the reference
does, and parameter counts stay the reference's (four matrices per layer). Without it the four
matrices train independently (a deliberate option, not the paper's setting).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

GTA_NAMES = ("mat_q", "mat_k", "mat_v", "mat_o")


def _names(path) -> tuple:
  out = []
  for entry in path:
    name = getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", None)))
    if name != "value":
      out.append(name)
  return tuple(out)


def _groups(tree) -> dict[tuple, dict[str, int]]:
  """{layer path: {"mat_q": leaf index, ...}} for every complete GTA group of a param tree."""
  groups: dict[tuple, dict[str, int]] = {}
  for i, (path, _) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
    names = _names(path)
    if names and names[-1] in GTA_NAMES:
      groups.setdefault(names[:-1], {})[names[-1]] = i
  return {k: v for k, v in groups.items() if len(v) == 4}


def _swap(a):
  return jnp.swapaxes(a, -1, -2)


def tie_gta(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """Wraps `inner` so each attention's (mat_q, mat_k, mat_v, mat_o) moves as one tied tensor.

  With `params` given, the updates also restore the tie exactly (the shared tensor is mat_q's
  value, as in the reference all four are views of it), so rounding can never untie them.
  """

  def update(grads, state, params=None):
    updates, state = inner.update(grads, state, params)
    groups = _groups(updates)
    if not groups:
      return updates, state
    leaves, treedef = jax.tree_util.tree_flatten(updates)
    p_leaves = jax.tree_util.tree_leaves(params) if params is not None else None
    for idx in groups.values():
      q, k, v, o = (leaves[idx[n]] for n in GTA_NAMES)
      combined = q + k + v + _swap(o)
      if p_leaves is None:
        new = {"mat_q": combined, "mat_k": combined, "mat_v": combined, "mat_o": _swap(combined)}
      else:
        shared = p_leaves[idx["mat_q"]] + combined
        new = {n: shared - p_leaves[idx[n]] for n in ("mat_q", "mat_k", "mat_v")}
        new["mat_o"] = _swap(shared) - p_leaves[idx["mat_o"]]
      for n in GTA_NAMES:
        leaves[idx[n]] = new[n].astype(leaves[idx[n]].dtype)
    return jax.tree_util.tree_unflatten(treedef, leaves), state

  return optax.GradientTransformation(inner.init, update)
