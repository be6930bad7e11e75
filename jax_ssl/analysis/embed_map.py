"""Embedding maps: features drawn in 2-D by PCA, t-SNE, UMAP and a Mapper graph, and how
much of the features' structure each map keeps, measured.

The maps take L2-normalised features (the cosine geometry of the kNN probe). For each
map: trustworthiness (Venna & Kaski: are a point's neighbours in the map its neighbours
in the features?) and the leave-one-out kNN accuracy of the labels in the map, both with
``NEIGHBOURS`` neighbours; the same two after 5% outliers are added and after Gaussian
noise is added (the corrupted features are mapped; the metrics are taken on the original
points against their clean features); and the wall time as the number of points grows.

Mapper (Singh, Mémoli & Carlsson 2007) draws a graph, not points: a 2-D PCA lens, Kepler
Mapper's cover (10 intervals per lens dimension, 10% overlap) and clusterer (DBSCAN, eps
0.5, 3 samples), laid out by networkx's spring layout. A point sits at the mean position
of the nodes it belongs to (one in no node, at the position of its nearest neighbour in
the features that is; all at the origin when DBSCAN finds no cluster at all, as on a
few dozen points), so the points of a node coincide: that is what a Mapper graph shows
of them.

umap-learn, kmapper and networkx are the ``analysis`` extra, imported on first use.
"""
from __future__ import annotations

import importlib
import time
import warnings

import numpy as np

from jax_ssl.analysis.curate import unit_rows

MAPS = ("PCA", "t-SNE", "UMAP", "Mapper")
NEIGHBOURS = 10
OUTLIER_FRACTION = 0.05
# The noise vector's expected norm, relative to the unit-norm features: enough to move a
# point past most of its neighbours (the demo's 10th-neighbour distances are ~0.3).
NOISE_SCALE = 0.5
EXTRA = {"umap": "umap-learn", "kmapper": "kmapper", "networkx": "networkx"}


def require_libraries():
    """Imports the ``analysis`` extra's libraries, or says in one line how to get them."""
    missing = []
    for module, package in EXTRA.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ImportError(f"embed-map needs {', '.join(missing)}, which the analysis extra "
                          "installs: pip install 'jax-ssl[analysis]'.")


def with_outliers(x: np.ndarray, rng: np.random.Generator,
                  fraction: float = OUTLIER_FRACTION) -> np.ndarray:
    """[N, D] unit rows → [N + round(fraction·N), D]: uniformly random unit directions
    appended, points that resemble no image."""
    extra = rng.standard_normal((round(fraction * len(x)), x.shape[1])).astype(x.dtype)
    return np.concatenate([x, unit_rows(extra)])


def with_noise(x: np.ndarray, rng: np.random.Generator,
               scale: float = NOISE_SCALE) -> np.ndarray:
    """[N, D] unit rows → the rows plus isotropic Gaussian noise of expected norm ≈
    ``scale``, renormalised."""
    noise = rng.standard_normal(x.shape).astype(x.dtype) * scale / np.sqrt(x.shape[1])
    return unit_rows(x + noise)


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Leave-one-out accuracy of the majority label of each point's ``k`` nearest other
    points (Euclidean; ties go to the smaller label)."""
    from sklearn.neighbors import NearestNeighbors

    neighbours = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(
        return_distance=False)
    votes = np.eye(labels.max() + 1)[labels[neighbours]].sum(axis=1)
    return float((votes.argmax(axis=1) == labels).mean())


def trustworthiness(features: np.ndarray, points: np.ndarray, k: int = NEIGHBOURS) -> float:
    """In [0, 1]; 1 when each point's ``k`` nearest in the map are among its ``k`` nearest
    in the features."""
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    return float(sklearn_trustworthiness(features, points, n_neighbors=k))


def mapper_graph(x: np.ndarray, seed: int):
    """[N, D] → (points [N, 2], {"nodes": [members], "edges": [(i, j)], "positions": [M, 2],
    "covered": fraction of the points in some node}); see the module docstring."""
    import kmapper
    import networkx
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    lens = PCA(2, random_state=seed).fit_transform(x)
    graph = kmapper.KeplerMapper(verbose=0).map(lens, x)  # its default cover and DBSCAN
    names = list(graph["nodes"])
    index = {name: i for i, name in enumerate(names)}
    edges = sorted({tuple(sorted((index[a], index[b])))
                    for a, targets in graph["links"].items() for b in targets})
    layout = networkx.Graph()
    layout.add_nodes_from(range(len(names)))
    layout.add_edges_from(edges)
    positions = networkx.spring_layout(layout, seed=seed)
    positions = np.array([positions[i] for i in range(len(names))]).reshape(-1, 2)
    total, count = np.zeros((len(x), 2)), np.zeros(len(x))
    members = [np.asarray(graph["nodes"][name]) for name in names]
    for node, rows in enumerate(members):
        total[rows] += positions[node]
        count[rows] += 1
    covered = count > 0
    points = total / np.maximum(count, 1)[:, None]
    if covered.any() and not covered.all():
        nearest = NearestNeighbors(n_neighbors=1).fit(x[covered]).kneighbors(
            x[~covered], return_distance=False)[:, 0]
        points[~covered] = points[covered][nearest]
    return points, {"nodes": [m.tolist() for m in members], "edges": edges,
                    "positions": positions, "covered": float(covered.mean())}


def draw(method: str, x: np.ndarray, seed: int):
    """[N, D] → (points [N, 2], the Mapper graph or None) by ``method`` (one of MAPS)."""
    with warnings.catch_warnings():  # UMAP: "n_jobs overridden to 1 by setting random_state"
        warnings.simplefilter("ignore", UserWarning)
        if method == "PCA":
            from sklearn.decomposition import PCA
            return PCA(2, random_state=seed).fit_transform(x), None
        if method == "t-SNE":
            from sklearn.manifold import TSNE
            perplexity = min(30.0, (len(x) - 1) / 3)  # sklearn's own bound
            return TSNE(2, perplexity=perplexity, init="pca",
                        random_state=seed).fit_transform(x), None
        if method == "UMAP":
            import umap
            return umap.UMAP(n_neighbors=min(15, len(x) - 1),
                             random_state=seed).fit_transform(x), None
        if method == "Mapper":
            return mapper_graph(x, seed)
    raise ValueError(f"unknown map {method!r}; choose one of {', '.join(MAPS)}.")


def compare(features: np.ndarray, labels: np.ndarray, *, sizes: tuple[int, ...],
            seed: int = 0, log=print) -> dict:
    """Draws and measures every map (module docstring).

    Args:
      features: [N, D] (any scale; normalised here); labels: [N] ints.
      sizes: the numbers of points (the first ones, each ≤ N) whose wall time is taken;
        N's is the clean map's.

    Returns:
      {"points": N, "features": {"kNN": accuracy in the features},
       "umap_compile_seconds": UMAP's one-off compilation, not in its times,
       "maps": {method: {"points": [N, 2], "graph": Mapper's or None, "trustworthiness",
       "kNN", "outliers": {"trustworthiness", "kNN", Mapper's "covered"}, "noise": {...},
       "seconds": {n: wall time}}}}
    """
    require_libraries()
    x = unit_rows(np.asarray(features, np.float32))
    labels = np.asarray(labels)
    n = len(x)
    if n <= NEIGHBOURS + 1:
        raise ValueError(f"embed-map needs more than {NEIGHBOURS + 1} points, not {n}.")
    if any(not NEIGHBOURS < size <= n for size in sizes):
        raise ValueError(f"sizes {sizes} must lie in ({NEIGHBOURS}, {n}].")
    rng = np.random.default_rng(seed)
    corrupted = {"outliers": with_outliers(x, rng), "noise": with_noise(x, rng)}
    start = time.perf_counter()
    draw("UMAP", x[:NEIGHBOURS + 20], seed)  # numba compiles UMAP on its first call
    out = {"points": n, "features": {"kNN": knn_accuracy(x, labels)},
           "umap_compile_seconds": time.perf_counter() - start, "maps": {}}

    def timed(method, data):
        start = time.perf_counter()
        drawn = draw(method, data, seed)
        return drawn, time.perf_counter() - start

    for method in MAPS:
        (points, graph), seconds = timed(method, x)
        result = {"points": points, "graph": graph,
                  "trustworthiness": trustworthiness(x, points),
                  "kNN": knn_accuracy(points, labels), "seconds": {n: seconds}}
        for name, data in corrupted.items():
            (corrupted_points, corrupted_graph), _ = timed(method, data)
            result[name] = {"trustworthiness": trustworthiness(x, corrupted_points[:n]),
                            "kNN": knn_accuracy(corrupted_points[:n], labels)}
            if corrupted_graph is not None:
                result[name]["covered"] = corrupted_graph["covered"]
        for size in sorted(set(sizes) - {n}):
            result["seconds"][size] = timed(method, x[:size])[1]
        result["seconds"] = dict(sorted(result["seconds"].items()))
        out["maps"][method] = result
        covered = "" if graph is None else f" ({graph['covered']:.1%} of the points in a node)"
        log(f"embed-map: {method}: trustworthiness {result['trustworthiness']:.3f}, kNN "
            f"{result['kNN']:.3f}, {seconds:.1f} s for {n} points{covered}")
    return out
