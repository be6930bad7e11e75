"""DINOv2-style curation: de-duplication, retrieval, and k-means sharded over devices."""
import jax
import numpy as np
import pytest

from jax_ssl import parallel
from jax_ssl.analysis import curate


def _unit(rng, n, d=128):
    return curate.unit_rows(rng.standard_normal((n, d)))


def _meshes():
    return parallel.data_mesh(jax.devices()[:1]), parallel.data_mesh()


def test_nearest_is_the_brute_force_top_k_on_one_and_eight_devices():
    rng = np.random.default_rng(0)
    pool, queries = _unit(rng, 203, 16), _unit(rng, 37, 16)  # 203: the 8 blocks are padded
    expected = np.argsort(-(queries @ pool.T), axis=1, kind="stable")[:, :5]
    for mesh in _meshes():
        similarity, index = curate.nearest(queries, pool, 5, mesh, query_chunk=16)
        np.testing.assert_array_equal(index, expected)
        np.testing.assert_allclose(similarity, np.take_along_axis(queries @ pool.T, index, 1),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="need 1 ≤ k ≤ 203"):
        curate.nearest(queries, pool, 204, _meshes()[1])


def test_planted_exact_and_near_duplicates_are_grouped_and_one_of_each_kept():
    rng = np.random.default_rng(1)
    pool = _unit(rng, 60)  # random directions in 128-d: cosine similarity about ±0.09
    pool = np.concatenate([pool, pool[[3, 3]],  # two exact copies of image 3
                           curate.unit_rows(pool[[10]] + 0.02 * rng.standard_normal(128))])
    groups = curate.duplicate_groups(pool, parallel.data_mesh(), threshold=0.6)
    assert [g.tolist() for g in groups] == [[3, 60, 61], [10, 62]]
    # the near copy's similarity is about 0.975: above 0.99 only the exact copies join
    groups = curate.duplicate_groups(pool, parallel.data_mesh(), threshold=0.99)
    assert [g.tolist() for g in groups] == [[3, 60, 61]]
    out = curate.curate(pool, pool[:5], parallel.data_mesh(), k=2, log=lambda _: None)
    assert out["removed"] == [60, 61, 62]
    assert out["duplicate_groups"] == [[3, 60, 61], [10, 62]]
    # each seed image's nearest kept image is itself: the copies were removed
    assert [row[0] for row in out["retrieved_per_seed"]] == [0, 1, 2, 3, 4]
    assert not set(out["curated"]) & set(out["removed"])


def test_sharded_kmeans_equals_one_device_kmeans_from_the_same_start():
    rng = np.random.default_rng(2)
    centres = _unit(rng, 3, 32)
    labels = np.repeat(np.arange(3), [50, 40, 27])  # 117 rows: padding on 8 devices
    points = curate.unit_rows(centres[labels] + 0.1 * rng.standard_normal((117, 32)))
    (one_c, one_a), (eight_c, eight_a) = (
        curate.kmeans(points, 3, mesh, iterations=10, seed=0) for mesh in _meshes())
    np.testing.assert_allclose(eight_c, one_c, atol=1e-6)
    np.testing.assert_array_equal(eight_a, one_a)
    # the three clusters are found: each cluster is one label
    for cluster in range(3):
        assert len(set(labels[one_a == cluster])) == 1
    np.testing.assert_allclose(np.linalg.norm(one_c, axis=1), 1.0, rtol=1e-5)


def test_cluster_based_sampling_is_balanced_across_the_chosen_clusters():
    assignments = np.repeat(np.arange(4), [100, 30, 5, 70])
    drawn = curate.sample_clusters(np.array([0, 1, 2, 1, 0]), assignments, per_cluster=20)
    assert sorted(drawn) == [0, 1, 2]  # cluster 3 was chosen by no seed image
    assert [len(drawn[c]) for c in (0, 1, 2)] == [20, 20, 5]  # 5: all of a smaller one
    for cluster, members in drawn.items():
        assert (assignments[members] == cluster).all() and len(set(members)) == len(members)


def test_cluster_mode_curates_from_the_clusters_the_seed_set_names():
    rng = np.random.default_rng(3)
    centres = _unit(rng, 4, 32)
    labels = np.repeat(np.arange(4), [60, 60, 20, 60])
    pool = centres[labels] + 0.1 * rng.standard_normal((200, 32))
    seed_set = centres[[0, 2]] + 0.1 * rng.standard_normal((2, 32))
    out = curate.curate(pool, seed_set, parallel.data_mesh(), mode="cluster",
                        threshold=0.99, num_clusters=4, per_cluster=10, log=lambda _: None)
    assert out["removed"] == []
    assert sorted(np.unique(labels[out["curated"]])) == [0, 2]
    assert sorted(len(c["drawn"]) for c in out["clusters"].values()) == [10, 10]
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        curate.curate(pool, seed_set, parallel.data_mesh(), mode="knn")
