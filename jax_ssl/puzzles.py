"""The pretext puzzles' definitions, shared by the recipes that pose them (jax_ssl.data)
and the losses that score them (jax_ssl.losses re-exports both): NumPy only.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

# Relative-position classes (Doersch et al. 2015): the neighbour's (row, col) offset from
# the centre patch, in row-major order with the centre skipped.
RELATIVE_POSITION_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@functools.lru_cache(maxsize=8)
def max_hamming_permutations(num_permutations: int = 1000, num_tiles: int = 9,
                             seed: int = 0) -> np.ndarray:
    """Jigsaw permutation set with maximal Hamming distance (Noroozi & Favaro 2016, Alg. 1).

    Starts from a random permutation; then repeatedly adds the permutation whose summed
    Hamming distance to those already chosen is largest (the paper's "maximal" set).

    Returns: int32 [num_permutations, num_tiles], rows unique, deterministic in ``seed``.
    """
    total = np.prod(np.arange(1, num_tiles + 1, dtype=np.float64))
    if not 1 <= num_permutations <= total:
        raise ValueError(
            f"num_permutations must be in [1, {int(total)}] for {num_tiles} tiles, "
            f"got {num_permutations}.")
    candidates = np.array(list(itertools.permutations(range(num_tiles))), dtype=np.int8)
    positions = np.ascontiguousarray(candidates.T)  # [tiles, candidates]: fast compares
    rng = np.random.default_rng(seed)
    summed_distance = np.zeros(len(candidates), np.int32)
    chosen = [int(rng.integers(len(candidates)))]
    for _ in range(num_permutations - 1):
        last = candidates[chosen[-1]]
        for position, tile in enumerate(last):
            summed_distance += positions[position] != tile
        summed_distance[chosen[-1]] = np.iinfo(np.int32).min  # chosen: never again
        chosen.append(int(np.argmax(summed_distance)))
    return candidates[chosen].astype(np.int32)
