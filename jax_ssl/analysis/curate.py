"""DINOv2-style data curation (Oquab et al. 2023, §3 and appendix A) on a checkpoint's
features: an uncurated pool is de-duplicated, then the images near a curated seed set
are retrieved from it.

- De-duplication: each pool image's ``neighbours`` (64) nearest pool images by cosine
  similarity; the pairs above ``threshold`` (0.6) are the edges of a graph whose
  connected components are the duplicate groups; each group keeps its first image.
  (DINOv2 embeds for this with a copy-detection network, SSCD; here the checkpoint's
  backbone does both jobs.)
- Sample-based retrieval: the ``k`` nearest kept pool images of each seed image (DINOv2:
  4 when the seed set is large).
- Cluster-based retrieval: spherical k-means (k-means++ seeding) of the kept pool; each
  seed image picks its nearest centroid, and the same number, ``per_cluster``, of images
  is drawn at random from each picked cluster (all of a smaller one): the result is
  balanced across the clusters that the seed set names, not dominated by the pool's
  largest modes.

Nearest-neighbour search and k-means run in JAX with the pool split over the ``data``
mesh (each device holds 1/n of it; queries and centroids are replicated), so the pool
may be larger than one device's memory: a device's top-k are merged over devices, and
k-means sums its members' features with ``psum``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jax_ssl import parallel

DATA = parallel.DATA_AXIS


def unit_rows(x) -> np.ndarray:
    """[N, D] → float32 rows scaled to unit L2 norm."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _split_over(x: np.ndarray, mesh):
    """[N, ...] → the rows padded to a multiple of the devices and placed one block per
    device, and the [N'] validity of each row (False on the padding)."""
    devices = mesh.devices.size
    padded = -(-len(x) // devices) * devices
    valid = np.arange(padded) < len(x)
    x = np.concatenate([x, np.zeros((padded - len(x), *x.shape[1:]), x.dtype)])
    sharding = parallel.batch_sharding(mesh)
    return jax.device_put(x, sharding), jax.device_put(valid, sharding)


@functools.partial(jax.jit, static_argnames=("k", "mesh"))
def _nearest_chunk(queries, pool, valid, *, k, mesh):
    def per_device(queries, pool, valid):
        similarity = jnp.where(valid[None, :], queries @ pool.T, -jnp.inf)
        values, index = jax.lax.top_k(similarity, min(k, pool.shape[0]))
        index = index + jax.lax.axis_index(DATA) * pool.shape[0]  # into the whole pool
        values = jax.lax.all_gather(values, DATA, axis=1, tiled=True)
        index = jax.lax.all_gather(index, DATA, axis=1, tiled=True)
        values, best = jax.lax.top_k(values, k)
        return values, jnp.take_along_axis(index, best, axis=1)
    # all_gather leaves every device the same merged top-k; shard_map cannot infer it
    return jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(DATA), P(DATA)),
                         out_specs=(P(), P()), check_vma=False)(queries, pool, valid)


def nearest(queries: np.ndarray, pool: np.ndarray, k: int, mesh, *,
            query_chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by inner product (cosine for unit rows): queries [Q, D] against the pool
    [N, D] split over ``mesh`` → (inner products [Q, k] descending, pool indices [Q, k])."""
    if not 0 < k <= len(pool):
        raise ValueError(f"k={k} nearest of a pool of {len(pool)} images: need 1 ≤ k ≤ "
                         f"{len(pool)}.")
    pool_blocks, valid = _split_over(np.asarray(pool, np.float32), mesh)
    values, index = [], []
    for start in range(0, len(queries), query_chunk):
        chunk = np.asarray(queries[start:start + query_chunk], np.float32)
        v, i = _nearest_chunk(chunk, pool_blocks, valid, k=k, mesh=mesh)
        values.append(np.asarray(v))
        index.append(np.asarray(i))
    return np.concatenate(values), np.concatenate(index)


def duplicate_groups(features: np.ndarray, mesh, *, threshold: float = 0.6,
                     neighbours: int = 64) -> list[np.ndarray]:
    """The connected components (of ≥ 2 images, each sorted, ordered by first image) of
    the graph joining each image to those of its ``neighbours`` nearest whose cosine
    similarity exceeds ``threshold``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(features)
    similarity, index = nearest(features, features, min(neighbours + 1, n), mesh)
    rows = np.broadcast_to(np.arange(n)[:, None], index.shape)
    edge = (similarity > threshold) & (index != rows)
    graph = coo_matrix((np.ones(edge.sum()), (rows[edge], index[edge])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    groups = [np.flatnonzero(component == c) for c in np.flatnonzero(sizes > 1)]
    return sorted(groups, key=lambda g: g[0])


@functools.partial(jax.jit, static_argnames=("iterations", "mesh"))
def _lloyd(centroids, points, valid, *, iterations, mesh):
    def per_device(centroids, points, valid):
        def assign(centroids):
            return jnp.argmax(points @ centroids.T, axis=1)

        def step(_, centroids):
            members = jax.nn.one_hot(assign(centroids), centroids.shape[0]) * valid[:, None]
            sums = jax.lax.psum(members.T @ points, DATA)
            counts = jax.lax.psum(members.sum(axis=0), DATA)
            moved = sums / jnp.maximum(jnp.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
            return jnp.where(counts[:, None] > 0, moved, centroids)  # empty: stays
        centroids = jax.lax.fori_loop(0, iterations, step, centroids)
        return centroids, assign(centroids)
    # the centroids come from psums: the same on every device
    return jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(DATA), P(DATA)),
                         out_specs=(P(), P(DATA)), check_vma=False)(centroids, points,
                                                                    valid)


def kmeans_plus_plus(points: np.ndarray, num_clusters: int, seed: int = 0,
                     candidates_per_cluster: int = 100) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) of unit rows [N, D] → [C, D]
    distinct rows: each next one drawn with probability ∝ its squared distance to the
    nearest already drawn. It runs on the host over a random subset of at most
    ``candidates_per_cluster``·C rows, so its cost does not grow with the pool."""
    rng = np.random.default_rng(seed)
    subset = rng.choice(len(points), min(len(points), candidates_per_cluster * num_clusters),
                        replace=False)
    candidates = np.asarray(points[np.sort(subset)], np.float32)
    chosen = [int(rng.integers(len(candidates)))]
    distance = np.maximum(2.0 - 2.0 * candidates @ candidates[chosen[0]], 0.0)
    for _ in range(num_clusters - 1):
        weights = distance.astype(np.float64)
        weights[chosen] = 0.0
        if weights.sum() == 0.0:  # only copies left: any row not drawn yet
            weights = np.ones(len(candidates))
            weights[chosen] = 0.0
        chosen.append(int(rng.choice(len(candidates), p=weights / weights.sum())))
        distance = np.minimum(distance, np.maximum(
            2.0 - 2.0 * candidates @ candidates[chosen[-1]], 0.0))
    return candidates[chosen]


def kmeans(points: np.ndarray, num_clusters: int, mesh, *, iterations: int = 20,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine assignment, centroid = normalised sum of its members) of
    unit rows [N, D] split over ``mesh``, seeded by ``kmeans_plus_plus`` → (centroids
    [C, D], assignments [N])."""
    if not 0 < num_clusters <= len(points):
        raise ValueError(f"{num_clusters} clusters of {len(points)} images: need 1 ≤ "
                         f"clusters ≤ {len(points)}.")
    start = kmeans_plus_plus(points, num_clusters, seed)
    blocks, valid = _split_over(np.asarray(points, np.float32), mesh)
    centroids, assignments = _lloyd(jnp.asarray(start), blocks, valid,
                                    iterations=iterations, mesh=mesh)
    return np.asarray(centroids), np.asarray(assignments)[:len(points)]


def sample_clusters(chosen: np.ndarray, assignments: np.ndarray, per_cluster: int,
                    seed: int = 0) -> dict[int, np.ndarray]:
    """{cluster: up to ``per_cluster`` of its members, drawn without replacement} for
    each cluster in ``chosen``."""
    rng = np.random.default_rng(seed)
    out = {}
    for cluster in np.unique(chosen):
        members = np.flatnonzero(assignments == cluster)
        out[int(cluster)] = np.sort(rng.choice(members, min(per_cluster, len(members)),
                                               replace=False))
    return out


def curate(pool: np.ndarray, seed_set: np.ndarray, mesh, *, mode: str = "sample",
           threshold: float = 0.6, neighbours: int = 64, k: int = 4,
           num_clusters: int = 100, per_cluster: int = 100, seed: int = 0,
           log=print) -> dict:
    """De-duplicates the pool's features [N, D] and retrieves from the rest by the seed
    set's [S, D] (module docstring); ``mode`` "sample" or "cluster".

    Returns {"duplicate_groups": [[pool index, ...]], "removed": [pool indices],
    "curated": [sorted pool indices]} and, by mode, "retrieved_per_seed" [S, k] or
    "clusters": {cluster: {"size": kept pool images in it, "drawn": [pool indices]}}.
    """
    if mode not in ("sample", "cluster"):
        raise ValueError(f"unknown retrieval mode {mode!r}; choose sample or cluster.")
    pool, seed_set = unit_rows(pool), unit_rows(seed_set)
    groups = duplicate_groups(pool, mesh, threshold=threshold, neighbours=neighbours)
    removed = np.sort(np.concatenate([g[1:] for g in groups])) if groups else np.zeros(0, int)
    kept = np.setdiff1d(np.arange(len(pool)), removed)
    log(f"curate: {len(groups)} duplicate groups, {len(removed)} of {len(pool)} pool images "
        f"removed")
    out = {"duplicate_groups": [g.tolist() for g in groups], "removed": removed.tolist()}
    if mode == "sample":
        _, index = nearest(seed_set, pool[kept], k, mesh)
        retrieved = kept[index]
        out.update(retrieved_per_seed=retrieved.tolist(), curated=np.unique(retrieved).tolist())
    else:
        centroids, assignments = kmeans(pool[kept], num_clusters, mesh, seed=seed)
        chosen = np.argmax(seed_set @ centroids.T, axis=1)
        drawn = sample_clusters(chosen, assignments, per_cluster, seed)
        out["clusters"] = {c: {"size": int((assignments == c).sum()),
                               "drawn": kept[members].tolist()}
                           for c, members in drawn.items()}
        out["curated"] = sorted(i for c in out["clusters"].values() for i in c["drawn"])
    log(f"curate: {len(out['curated'])} images retrieved ({mode}-based)")
    return out
