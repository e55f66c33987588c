"""Object-discovery evaluation by clustering features (docs/evaluation.md#objects), and the
objects `Evaluator`.

Pipeline per image: features (the last readout c) -> optional up-tiling ("saccade") -> L2 norm over
channels -> per-image PCA -> average-linkage agglomerative clustering -> nearest upsample of the
label map -> FG-ARI and MBO against the ground-truth mask. The model runs on the accelerator; the
resize, clustering and metrics run on the host in numpy/scipy. Every batch of images (and every
up-tiling crop) is split over the devices of a mesh (default: all; evaluate/common.py) with the
weights replicated, the last batch padded; the features do not depend on the device count.
"""

from collections.abc import Callable, Iterable, Mapping
import functools
import itertools
from concurrent.futures import ThreadPoolExecutor
import os

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.cluster import hierarchy

from akorn_jax import data, imageops, metrics, progress
from akorn_jax.data import pipeline
from akorn_jax.evaluate import common, pictures

FeatureFn = Callable[[np.ndarray], jax.Array | np.ndarray]

# torch's bicubic kernel parameter; jax.image.resize("bicubic") uses Keys' a = -0.5 instead
# (docs/evaluation.md#up-tiling).
_TORCH_CUBIC_A = -0.75


def _cubic(d: np.ndarray, a: float = _TORCH_CUBIC_A) -> np.ndarray:
  """Keys cubic convolution kernel W(d) with parameter a, zero for |d| >= 2."""
  d = np.abs(d)
  near = ((a + 2) * d - (a + 3)) * d * d + 1
  far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
  return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
  """1-D resampling matrix of torch bicubic interpolation (a = -0.75, align_corners=False).

  Output sample o reads the source position (o + 0.5) * in/out - 0.5 (not clamped), from its four
  neighbours floor(.)-1 .. floor(.)+2; neighbours outside the signal are replaced by the nearest
  edge sample, as torch does, so their weights accumulate on the edge. No antialiasing.

  Args:
    in_size: length of the input signal.
    out_size: length of the output signal.

  Returns:
    [out_size, in_size] float64 matrix M with out = M @ in.
  """
  src = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
  base = np.floor(src).astype(np.int64)
  mat = np.zeros((out_size, in_size))
  rows = np.arange(out_size)
  for tap in range(-1, 3):
    np.add.at(mat, (rows, np.clip(base + tap, 0, in_size - 1)), _cubic(src - (base + tap)))
  return mat


def resize_bicubic(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Resizes [B, H, W, C] images to [B, *size, C] like torch bicubic (a = -0.75); float32."""
  if tuple(size) == images.shape[1:3]:  # the kernel interpolates exactly at integer positions
    return images.astype(np.float32)
  rows = bicubic_matrix(images.shape[1], size[0])
  cols = bicubic_matrix(images.shape[2], size[1])
  out = np.einsum("oh,bhwc->bowc", rows, images.astype(np.float64))
  return np.einsum("pw,bowc->bopc", cols, out).astype(np.float32)


def uptile(feature_fn: FeatureFn, images: np.ndarray, psize: int, factor: int) -> np.ndarray:
  """Up-tiled ("saccade") feature map from factor^2 shifted crops (docs/evaluation.md#up-tiling).

  The images are resized bicubically (torch's a = -0.75, see `bicubic_matrix`) to
  (H + psize - s, W + psize - s) with stride s = psize / factor, cropped to H x W at offsets
  (i * s, j * s) for i, j < factor, and the crops' feature maps are interleaved:
  big[:, y * factor + i, x * factor + j] = feat_(i, j)[:, y, x]. With factor 1 the resize is the
  identity and the result is feature_fn(images).

  Args:
    feature_fn: maps images [B, H, W, 3] to features [B, h, w, C], h = H / psize.
    images: [B, H, W, 3] float images in [0, 1].
    psize: patch size of the model.
    factor: up-tiling factor r; must divide psize.

  Returns:
    [B, h * factor, w * factor, C] features as numpy.
  """
  if factor < 1 or psize % factor:
    raise ValueError(
        f"uptile factor {factor} must be a positive divisor of the patch size {psize} (the crop stride"
        " psize / factor is in whole pixels); choose e.g. factor 1, 2 or 4 for psize 4 or 8."
    )
  b, h, w, _ = images.shape
  stride = psize // factor
  big = resize_bicubic(images, (h + psize - stride, w + psize - stride))
  crop = lambda i, j: big[:, i * stride : i * stride + h, j * stride : j * stride + w]
  feats = np.stack(
      [np.stack([np.asarray(feature_fn(crop(i, j))) for j in range(factor)]) for i in range(factor)]
  )  # [i, j, B, h', w', C]
  _, _, _, fh, fw, c = feats.shape
  return feats.transpose(2, 3, 0, 4, 1, 5).reshape(b, fh * factor, fw * factor, c)


def _cluster_one(features: np.ndarray, num_clusters: int, pca_dim: int) -> np.ndarray:
  """[h, w, C] features -> [h, w] 0-based cluster labels."""
  h, w, c = features.shape
  x = features.reshape(h * w, c).astype(np.float64)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  if c > pca_dim:
    x = x - x.mean(0)
    _, vecs = np.linalg.eigh(x.T @ x / max(len(x) - 1, 1))  # eigenvalues ascending
    x = x @ vecs[:, ::-1][:, :pca_dim]
  tree = hierarchy.linkage(x, method="average", metric="euclidean")
  return hierarchy.fcluster(tree, t=num_clusters, criterion="maxclust").reshape(h, w) - 1


def cluster_features(
    features: np.ndarray, num_clusters: int, pca_dim: int = 128, num_workers: int | None = None
) -> np.ndarray:
  """Clusters every image's feature vectors (docs/evaluation.md#objects).

  Each position's feature is L2-normalised over channels; if C > pca_dim, the image's h * w vectors
  are centred and projected on the top-pca_dim eigenvectors of their covariance (not re-normalised);
  then average-linkage agglomerative clustering with Euclidean distance is cut into at most
  num_clusters flat clusters (scipy `fcluster(criterion="maxclust")`, which may return fewer on ties).

  Args:
    features: [B, h, w, C] features.
    num_clusters: number of clusters k.
    pca_dim: PCA dimension; no PCA when C <= pca_dim.
    num_workers: threads clustering images in parallel (default: CPU count).

  Returns:
    [B, h, w] int 0-based labels.
  """
  features = np.asarray(features)
  with ThreadPoolExecutor(num_workers or os.cpu_count()) as pool:
    labels = pool.map(lambda f: _cluster_one(f, num_clusters, pca_dim), features)
    return np.stack(list(labels)).astype(np.int32)


def _prepare_batch(batch: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
  """Images as float32 in [0, 1] and masks as int32 with 255 -> -1 (ignore)."""
  mask = np.asarray(batch["mask"])
  if mask.ndim == 4 and mask.shape[-1] == 1:
    mask = mask[..., 0]
  return imageops.to_float(np.asarray(batch["image"])), imageops.ignore_to_minus_one(mask)


def evaluate_objects(
    feature_fn: FeatureFn,
    batches: Iterable[Mapping[str, np.ndarray]],
    *,
    psize: int,
    num_clusters: int,
    uptile_factor: int = 1,
    pca_dim: int = 128,
) -> dict[str, float]:
  """FG-ARI and MBO of clustered features over a dataset (docs/evaluation.md#objects).

  Args:
    feature_fn: maps images [B, H, W, 3] in [0, 1] to features [B, H / psize, W / psize, C] (for
      AKOrN the last readout c; any randomness, e.g. the initial oscillators, is its business).
    batches: iterable of dicts with "image" [B, H, W, 3] (uint8, or float in [0, 1]) and "mask"
      [B, H, W] int object ids (0 background, 255 or -1 ignore); optionally "class_mask" [B, H, W]
      semantic classes (Pascal VOC / COCO), which adds MBO_c.
    psize: patch size of the model.
    num_clusters: k of the agglomerative clustering.
    uptile_factor: up-tiling factor r (1 = plain model; the README runs use 4).
    pca_dim: PCA dimension.

  Returns:
    dict with fg_ari, fg_ari_std, mbo, mbo_std (MBO_i, against instances; mean and population std
    over images; images without foreground / objects are skipped), with class masks also mbo_c,
    mbo_c_std (MBO_c: the same overlap against the semantic-class map, docs/evaluation.md#objects), and
    num_images (all images seen).
  """
  aris, mbos, mbos_c = [], [], []
  for batch in progress.track(batches, desc="objects eval", unit="batch"):
    images, masks = _prepare_batch(batch)
    features = uptile(feature_fn, images, psize, uptile_factor)
    clusters = cluster_features(features, num_clusters, pca_dim)
    labels = imageops.resize_nearest(clusters, masks.shape[1:], axis=-2)
    aris.append(metrics.fg_ari_batch(masks, labels))
    mbos.append(metrics.mbo_batch(masks, labels))
    if "class_mask" in batch:
      classes = imageops.ignore_to_minus_one(np.asarray(batch["class_mask"]))
      mbos_c.append(metrics.mbo_batch(classes, labels))
  if not aris:
    raise ValueError("evaluate_objects got no batches; check the dataset split and batch size.")
  ari, mbo = np.concatenate(aris), np.concatenate(mbos)
  extra = {}
  if mbos_c:
    mbo_c = np.concatenate(mbos_c)
    extra = {"mbo_c": float(np.nanmean(mbo_c)), "mbo_c_std": float(np.nanstd(mbo_c))}
  return {**extra,
      "fg_ari": float(np.nanmean(ari)),
      "fg_ari_std": float(np.nanstd(ari)),
      "mbo": float(np.nanmean(mbo)),
      "mbo_std": float(np.nanstd(mbo)),
      "num_images": int(len(ari)),
  }


# ------------------------------------------------------------------------------------------------
# The object-discovery evaluator of the trainer and of experiments.evaluate
# ------------------------------------------------------------------------------------------------


@functools.cache
def _jit_forward(graphdef: nnx.GraphDef, pictures_: bool):
  """f(state, images, key) -> {"features" [B, h, w, C]} and, with `pictures_`, "states": the last
  layer's oscillator states batch first [B, T, h, w, C] (models without oscillators: the features
  as the one state). Every output leads with the batch, as `common.sharded_call` needs; cached per
  architecture so every batch and crop reuses one compilation per shape."""

  def fn(state, images, key):
    _, aux = nnx.merge(graphdef, state)(images, key=key, return_states=pictures_)
    out = {"features": aux["features"]}
    if pictures_:
      states = aux["states"][-1] if "states" in aux else aux["features"][None]  # [T, B, ...]
      out["states"] = jnp.moveaxis(states, 0, 1)
    return out

  return jax.jit(fn)


def _forward(model: nnx.Module, images: np.ndarray, key: jax.Array,
             mesh: jax.sharding.Mesh | None, pictures_: bool = False) -> dict[str, np.ndarray]:
  """`_jit_forward`'s outputs as host arrays, the batch split over `mesh` (default all)."""
  graphdef, state = nnx.split(model)
  mesh = mesh or common.default_mesh()
  return common.sharded_call(_jit_forward(graphdef, pictures_), common.replicate(state, mesh),
                             np.asarray(images, np.float32), key, batch_argnums=(1,), mesh=mesh)


def model_features(model: nnx.Module, key: jax.Array, *,
                   mesh: jax.sharding.Mesh | None = None) -> FeatureFn:
  """images [B, H, W, 3] in [0, 1] -> the model's final readout features [B, h, w, C].

  Every call (each batch, each up-tiling crop) draws a fresh random initial state, as the reference
  does: call i uses fold_in(key, i), so an evaluation is still reproducible from its key. Each
  call's batch is split over the devices of `mesh` (default: all); the weights are placed there
  once.
  """
  calls = itertools.count()
  graphdef, state = nnx.split(model)
  mesh = mesh or common.default_mesh()
  state = common.replicate(state, mesh)
  forward = _jit_forward(graphdef, False)

  def fn(images):
    k = jax.random.fold_in(key, next(calls))
    return common.sharded_call(forward, state, np.asarray(images, np.float32), k,
                               batch_argnums=(1,), mesh=mesh)["features"]
  return fn


class Evaluator:
  """FG-ARI / MBO of an object-discovery model on `config.eval.split`, plus pictures.

  For every up-tiling factor r in `eval.uptile`, `run` returns "eval/{fg_ari,fg_ari_std,mbo,
  mbo_std}_x{r}" over the first `eval.num_images` images (0 = the whole split), using the final
  readout c of the model (random initial oscillators drawn from the key) as features. With a
  `workdir`, the first `eval.num_pictures` images are also drawn (input, ground truth, predicted
  masks, oscillator states over time), saved as <workdir>/pictures/step{step}_img{i}.png and
  returned as uint8 [H, W, 3] under "pictures/img{i}". The trainer (`periodic=True`) and
  experiments.evaluate run the same evaluation.
  """

  def __init__(self, config, *, periodic: bool = False, mesh: jax.sharding.Mesh | None = None):
    """`mesh`: the devices every batch is split over (default: all, chosen at `run`)."""
    del periodic  # the same evaluation either way
    self.mesh = mesh
    e = config.eval
    self.data_config, self.split = config.data, e.split
    self.batch_size, self.psize = int(config.data.eval_batch_size), int(config.model.psize)
    self.num_images, self.num_pictures = int(e.num_images), int(e.num_pictures)
    self.uptile, self.num_clusters, self.pca_dim = tuple(e.uptile), e.num_clusters, e.pca_dim

  def run(self, model: nnx.Module, key: jax.Array, *, workdir: str | None = None,
          step: int = 0) -> dict:
    """Scores `model` (in eval mode); pictures only when `workdir` is given."""
    src = data.from_config(self.data_config, self.split)

    feature_fn = model_features(model, key, mesh=self.mesh)

    out = {}
    for factor in self.uptile:
      res = evaluate_objects(feature_fn, pipeline.eval_batches(src, self.batch_size,
                                                               self.num_images),
                             psize=self.psize, num_clusters=self.num_clusters,
                             uptile_factor=factor, pca_dim=self.pca_dim)
      out.update({f"eval/{k}_x{factor}": v for k, v in res.items() if k != "num_images"})
    if workdir is not None and self.num_pictures:
      out.update(self._pictures(model, key, src, workdir, step))
    return out

  def _pictures(self, model, key, src, workdir: str, step: int) -> dict[str, np.ndarray]:
    k = min(self.num_pictures, len(src), self.num_images or len(src))
    examples = [src[i] for i in range(k)]
    images = imageops.to_float(np.stack([e["image"] for e in examples]))
    # One pass: features and the last layer's states [B, T, h, w, C] (models without oscillators,
    # ViT/ItrSA, show their feature map as the one panel).
    aux = _forward(model, images, key, self.mesh, pictures_=True)
    pred = imageops.resize_nearest(
        cluster_features(aux["features"], self.num_clusters, self.pca_dim),
        images.shape[1:3], axis=-2)
    out = {}
    for i, e in enumerate(examples):
      fig = pictures.object_figure(e["image"], imageops.ignore_to_minus_one(e["mask"]), pred[i],
                                   aux["states"][i])
      pictures.save_png(os.path.join(workdir, "pictures", f"step{step:07d}_img{i}.png"), fig)
      out[f"pictures/img{i}"] = fig
    return out
