"""Every loss of jax_ssl.losses on a small global batch, for the generic tests.

A case says how to make its inputs, which axis of each input is the batch axis (split
across devices; None for a replicated input) and which inputs are differentiable.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jax_ssl import losses

N = 16  # global batch: 2 rows per device on 8 devices


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    fn: Callable  # fn(*args, axis_name=...) -> array
    make: Callable[[np.random.Generator], tuple]
    batch_axes: tuple  # per input: the axis split over devices, or None (replicated)
    grad_argnums: tuple = (0,)
    out_batch_axis: int | None = None  # None: replicated output (the same on every device)
    # Inputs split over the devices that are rows of a table, not samples (a sharded
    # memory bank): reordering the batch leaves them, and an output of rows, in place.
    row_inputs: tuple = ()
    out_rows: bool = False

    def __repr__(self):
        return self.name


def normal(rng, *shape, scale=1.0):
    return (scale * rng.normal(size=shape)).astype(np.float32)


def unit(rng, *shape):
    x = normal(rng, *shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _pirl_inputs(rng):
    memory = unit(rng, 40, 6)
    indices = rng.permutation(40)[:N].astype(np.int32)
    negatives = rng.integers(0, 40, size=(N, 5)).astype(np.int32)
    return normal(rng, N, 6), normal(rng, N, 6), memory, indices, negatives, np.float32(9.0)


def _ibot_inputs(rng):
    mask = rng.random((N, 5)) < 0.5
    mask[3] = False  # an image with no masked patch counts as 0 (clamp to 1)
    return normal(rng, N, 5, 7, scale=2.0), softmax(normal(rng, N, 5, 7, scale=3.0)), mask


def _gathered_patch_inputs(rng):
    """A padded buffer of masked tokens: 3 per device slot, the last of every pair of
    devices' rows padding (weight 0, not valid)."""
    weights = np.where(np.arange(N) % 4 == 3, 0.0, 1.0 / (1 + np.arange(N) % 3)).astype(
        np.float32)
    return (normal(rng, N, 7, scale=2.0), softmax(normal(rng, N, 7, scale=3.0)), weights,
            weights > 0)


def _mae_inputs(rng):
    mask = np.zeros((N, 4), np.float32)
    mask[np.arange(N)[:, None], np.argsort(rng.random((N, 4)), axis=1)[:, :3]] = 1.0
    return normal(rng, N, 4, 12), normal(rng, N, 4, 12, scale=3.0), mask


CASES = [
    Case("info_nce", lambda a, b, axis_name: losses.info_nce(a, b, axis_name=axis_name),
         lambda r: (normal(r, N, 6), normal(r, N, 6)), (0, 0), (0, 1)),
    Case("moco_v3_loss",
         lambda q, k, axis_name: losses.moco_v3_loss(q, k, temperature=0.2, axis_name=axis_name),
         lambda r: (normal(r, N, 6), normal(r, N, 6)), (0, 0), (0, 1)),
    Case("sinkhorn", lambda s, axis_name: losses.sinkhorn(s, axis_name=axis_name),
         lambda r: (normal(r, N, 5, scale=0.3),), (0,), (), out_batch_axis=0),
    # DINOv2's patch codes: a padded buffer, the padding left out of every sum
    Case("sinkhorn_valid",
         lambda s, v, axis_name: losses.sinkhorn(s, epsilon=0.07, valid=v, axis_name=axis_name),
         lambda r: (normal(r, N, 5, scale=0.3), np.arange(N) % 3 != 2), (0, 0), (),
         out_batch_axis=0),
    Case("swav_loss", lambda s, axis_name: losses.swav_loss(s, axis_name=axis_name),
         lambda r: (normal(r, 4, N, 5, scale=0.5),), (1,)),
    Case("swav_loss_queue",
         lambda s, q, axis_name: losses.swav_loss(s, queue_scores=q, axis_name=axis_name),
         lambda r: (normal(r, 4, N, 5, scale=0.5), normal(r, 2, 3 * N, 5, scale=0.5)), (1, 1)),
    Case("dino_loss",
         lambda s, t, c, axis_name: losses.dino_loss(s, t, c, axis_name=axis_name)[0],
         lambda r: (normal(r, 4, N, 7), normal(r, 2, N, 7, scale=0.1), normal(r, 7, scale=0.1)),
         (1, 1, None), (0, 1)),
    Case("dino_center",
         lambda s, t, c, axis_name: losses.dino_loss(s, t, c, axis_name=axis_name)[1],
         lambda r: (normal(r, 4, N, 7), normal(r, 2, N, 7), normal(r, 7)), (1, 1, None), ()),
    Case("ibot_patch_loss",
         lambda s, t, m, axis_name: losses.ibot_patch_loss(s, t, m, axis_name=axis_name),
         _ibot_inputs, (0, 0, 0)),
    Case("ibot_patch_center",
         lambda t, c, axis_name: losses.ibot_patch_center(t, c, axis_name=axis_name),
         lambda r: (normal(r, N, 5, 7), normal(r, 7)), (0, None), ()),
    Case("ibot_gathered_patch_loss",
         lambda s, t, w, v, axis_name: losses.ibot_gathered_patch_loss(
             s, t, w, num_images=s.shape[0] // 2, axis_name=axis_name),
         _gathered_patch_inputs, (0, 0, 0, 0)),
    Case("update_center_valid",
         lambda s, t, w, v, axis_name: losses.update_center(
             s, t[0], valid=v, axis_name=axis_name),
         _gathered_patch_inputs, (0, None, 0, 0), ()),
    Case("koleo_loss", lambda x, axis_name: losses.koleo_loss(x, axis_name=axis_name),
         lambda r: (normal(r, N, 6),), (0,)),
    Case("mae_loss",
         lambda p, t, m, axis_name: losses.mae_loss(p, t, m, axis_name=axis_name),
         _mae_inputs, (0, 0, 0), (0, 1)),
    Case("ijepa_loss", lambda p, t, axis_name: losses.ijepa_loss(p, t, axis_name=axis_name),
         lambda r: (normal(r, N, 3, 8), normal(r, N, 3, 8, scale=2.0)), (0, 0)),
    Case("ijepa_loss_valid",
         lambda p, t, axis_name: losses.ijepa_loss(p, t, valid=np.arange(3) < 2,
                                                   axis_name=axis_name),
         lambda r: (normal(r, N, 3, 8), normal(r, N, 3, 8, scale=2.0)), (0, 0)),
    Case("byol_loss", lambda p, z, axis_name: losses.byol_loss(p, z, axis_name=axis_name),
         lambda r: (normal(r, N, 6), normal(r, N, 6)), (0, 0), (0, 1)),
    Case("barlow_twins_loss",
         lambda a, b, axis_name: losses.barlow_twins_loss(a, b, axis_name=axis_name),
         lambda r: (normal(r, N, 6), normal(r, N, 6)), (0, 0), (0, 1)),
    Case("vicreg_loss", lambda a, b, axis_name: losses.vicreg_loss(a, b, axis_name=axis_name),
         lambda r: (normal(r, N, 6, scale=0.5), normal(r, N, 6, scale=0.5)), (0, 0), (0, 1)),
    # Features wider than the global batch: the N×N Gram route of the D×D sums.
    Case("barlow_twins_loss_wide",
         lambda a, b, axis_name: losses.barlow_twins_loss(a, b, axis_name=axis_name),
         lambda r: (normal(r, N, 40), normal(r, N, 40)), (0, 0), (0, 1)),
    Case("vicreg_loss_wide", lambda a, b, axis_name: losses.vicreg_loss(a, b, axis_name=axis_name),
         lambda r: (normal(r, N, 24, scale=0.5), normal(r, N, 24, scale=0.5)), (0, 0), (0, 1)),
    Case("pirl_loss",
         lambda e, t, m, i, n, z, axis_name: losses.pirl_loss(
             e, t, m, i, n, log_normalizer=z, axis_name=axis_name),
         _pirl_inputs, (0, 0, None, 0, 0, None), (0, 1)),
    Case("nce_log_normalizer",
         lambda e, t, m, i, n, z, axis_name: losses.nce_log_normalizer(
             e, m, i, n, axis_name=axis_name),
         _pirl_inputs, (0, 0, None, 0, 0, None), ()),
    Case("memory_bank_update",
         lambda e, t, m, i, n, z, axis_name: losses.memory_bank_update(
             m, i, e, axis_name=axis_name),
         _pirl_inputs, (0, 0, None, 0, 0, None), ()),
    # The bank split over the devices in blocks of rows, as the trainer keeps PIRL's.
    Case("pirl_loss_sharded_bank",
         lambda e, t, m, i, n, z, axis_name: losses.pirl_loss(
             e, t, m, i, n, log_normalizer=z, bank_sharded=True, axis_name=axis_name),
         _pirl_inputs, (0, 0, 0, 0, 0, None), (0, 1), row_inputs=(2,)),
    Case("nce_log_normalizer_sharded_bank",
         lambda e, t, m, i, n, z, axis_name: losses.nce_log_normalizer(
             e, m, i, n, bank_sharded=True, axis_name=axis_name),
         _pirl_inputs, (0, 0, 0, 0, 0, None), (), row_inputs=(2,)),
    Case("memory_bank_update_sharded_bank",
         lambda e, t, m, i, n, z, axis_name: losses.memory_bank_update(
             m, i, e, bank_sharded=True, axis_name=axis_name),
         _pirl_inputs, (0, 0, 0, 0, 0, None), (), out_batch_axis=0, row_inputs=(2,),
         out_rows=True),
    Case("rotation_loss", lambda x, y, axis_name: losses.rotation_loss(x, y, axis_name=axis_name),
         lambda r: (normal(r, N, 4), r.integers(0, 4, N).astype(np.int32)), (0, 0)),
    Case("jigsaw_loss", lambda x, y, axis_name: losses.jigsaw_loss(x, y, axis_name=axis_name),
         lambda r: (normal(r, N, 10), r.integers(0, 10, N).astype(np.int32)), (0, 0)),
    Case("relative_position_loss",
         lambda x, y, axis_name: losses.relative_position_loss(x, y, axis_name=axis_name),
         lambda r: (normal(r, N, 8), r.integers(0, 8, N).astype(np.int32)), (0, 0)),
]
