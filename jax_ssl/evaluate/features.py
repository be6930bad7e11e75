"""Frozen features of a split: jitted, sharded over the ``data`` mesh, gathered on every host."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from jax_ssl.data import pipeline


def extract(embed, source, recipe, mesh, *, batch_size: int = 512, progress: bool = True):
    """``embed(images) -> [B, D]`` over the whole split → (features [N, D], labels [N]).

    ``embed`` may also return a tuple (or any pytree) of [B, D_i] arrays, e.g. one per
    layer; the features then come back as the same tree of [N, D_i] arrays. Features are
    float32 whatever the backbone computes in. ``embed`` is traced once under
    ``jax.jit``; batches are padded to ``batch_size`` and the padding is dropped again.
    """
    embed = jax.jit(embed)
    features, labels = [], []
    batches = pipeline.global_batches(
        pipeline.eval_batches(source, recipe, global_batch_size=batch_size), mesh)
    total = -(-source.num_examples // batch_size)
    for i, batch in enumerate(batches):
        out = jax.tree.map(lambda x: x.astype(jnp.float32), embed(batch["image"]))
        out, label, mask = jax.tree.map(
            np.asarray, multihost_utils.process_allgather(
                (out, batch["label"], batch["mask"]), tiled=True))
        features.append(jax.tree.map(lambda x, m=mask: x[m], out))
        labels.append(label[mask])
        if progress and jax.process_index() == 0 and (i + 1) % 20 == 0:
            print(f"  features {source.name} {source.split}: batch {i + 1}/{total}", flush=True)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *features), np.concatenate(labels)
