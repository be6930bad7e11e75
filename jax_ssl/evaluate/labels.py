"""Low-label subsets of a training split: a fraction of each class, or k per class."""
from __future__ import annotations

import numpy as np


def label_subset(labels, *, fraction: float | None = None, per_class: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-balanced subset of ``labels``.

    ``fraction``: round(fraction · n_c) examples of each class c (at least one);
    ``per_class``: k examples of each class (all of a class with fewer). Each class's
    examples are drawn without replacement by a seeded permutation.
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("label_subset needs exactly one of fraction= or per_class=.")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = max(1, round(fraction * len(members))) if fraction is not None else per_class
        chosen.append(members[:n])
    return np.sort(np.concatenate(chosen))
