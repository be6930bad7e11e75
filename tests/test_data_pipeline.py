"""The per-host pipeline: sharding over processes, epochs, determinism, resume, global arrays."""
import jax
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl import parallel
from jax_ssl.data import pipeline, recipes, sources

N = 250


def _synthetic(n=N, split="train"):
    """Example i is a 4×4 image holding i (low byte, high byte, 0); its label is i % 10."""
    def load(index):
        pixel = tf.stack([index % 256, index // 256, tf.zeros_like(index)])
        return tf.cast(tf.broadcast_to(pixel, [4, 4, 3]), tf.uint8)
    return sources.IndexedSource("synthetic", split, np.arange(n) % 10, 10, load)


def _noisy(image, seed):
    """A recipe that exposes both the example's index and its augmentation seed."""
    image = tf.cast(image, tf.int32)
    return {"index": image[0, 0, 0] + 256 * image[0, 0, 1],
            "noise": tf.random.stateless_uniform([3], seed)}


def _take(dataset, n):
    it = dataset.as_numpy_iterator()
    return [next(it) for _ in range(n)]


def _train(source=None, **kwargs):
    kwargs = {"global_batch_size": 20, "seed": 0, "process_index": 0, "process_count": 1,
              **kwargs}
    return pipeline.train_batches(source or _synthetic(), _noisy, **kwargs)


def test_each_epoch_is_a_new_permutation_of_the_split():
    indices = np.concatenate([b["index"] for b in _take(_train(global_batch_size=10), 50)])
    first, second = indices[:N], indices[N:2 * N]
    assert sorted(first) == list(range(N)) and sorted(second) == list(range(N))
    assert not np.array_equal(first, second) and not np.array_equal(first, np.arange(N))


def test_labels_follow_their_examples():
    batch = _take(_train(), 1)[0]
    np.testing.assert_array_equal(batch["label"], batch["index"] % 10)
    assert batch["label"].dtype == np.int32 and batch["noise"].shape == (20, 3)


def test_same_seed_same_stream_other_seed_other_stream():
    a, b, c = (_take(_train(seed=s), 5) for s in (7, 7, 8))
    for x, y in zip(a, b, strict=False):
        np.testing.assert_array_equal(x["index"], y["index"])
        np.testing.assert_array_equal(x["noise"], y["noise"])
    assert not np.array_equal(a[0]["index"], c[0]["index"])
    # every example gets its own augmentation seed, also when it reappears next epoch
    noise = np.concatenate([x["noise"] for x in _take(_train(seed=7), 30)])
    assert len(np.unique(noise[:, 0])) == len(noise)


@pytest.mark.parametrize("start_step", [3, 12, 13, 40])  # 12.5 steps per epoch
def test_resume_at_a_step_equals_the_uninterrupted_stream(start_step):
    straight = _take(_train(), start_step + 2)[start_step:]
    resumed = _take(_train(start_step=start_step), 2)
    for x, y in zip(straight, resumed, strict=False):
        np.testing.assert_array_equal(x["index"], y["index"])
        np.testing.assert_array_equal(x["noise"], y["noise"])


def test_two_processes_read_disjoint_parts_of_the_same_global_stream():
    one = _take(_train(global_batch_size=20), 13)
    parts = [_take(_train(global_batch_size=20, process_index=p, process_count=2), 13)
             for p in range(2)]
    for step, whole in enumerate(one):
        halves = [part[step] for part in parts]
        assert all(h["index"].shape == (10,) for h in halves)  # local share of 20
        for key in ("index", "noise", "label"):  # same global batch, same augmentations
            np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key])
    # epoch 0 is global positions 0…249: steps 0–12 of process 0, steps 0–11 of process 1
    first_epoch = [np.concatenate([b["index"] for b in part[:13 - p]])
                   for p, part in enumerate(parts)]
    assert not set(first_epoch[0]) & set(first_epoch[1])
    assert set(first_epoch[0]) | set(first_epoch[1]) == set(range(N))


def test_eval_batches_cover_the_split_once_with_padding():
    source = _synthetic(n=101)
    parts = []
    for p in range(2):
        batches = list(pipeline.eval_batches(source, _noisy, global_batch_size=20,
                                             process_index=p, process_count=2))
        assert len(batches) == 6  # ceil(51 / 10) on every process, also the one with 50
        index = np.concatenate([b["index"] for b in batches])
        mask = np.concatenate([b["mask"] for b in batches])
        assert mask[:mask.sum()].all() and not mask[mask.sum():].any()
        parts.append(index[mask])
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(101))


def test_indivisible_batches_name_both_numbers():
    with pytest.raises(ValueError, match="batch size 21 is not divisible by the 2 processes"):
        _train(global_batch_size=21, process_count=2)
    with pytest.raises(ValueError, match="has 250 examples, fewer than the global batch of 400"):
        _train(global_batch_size=400, process_count=2)
    mesh = parallel.data_mesh()
    batches = pipeline.global_batches(_train(global_batch_size=12), mesh)
    with pytest.raises(ValueError, match="12 is not divisible by the 8 devices"):
        next(batches)


def test_global_batches_are_sharded_over_the_data_axis():
    mesh = parallel.data_mesh()
    local = _take(_train(global_batch_size=16), 3)
    batches = pipeline.global_batches(_train(global_batch_size=16), mesh)
    for expected in local:
        batch = next(batches)
        assert isinstance(batch["index"], jax.Array)
        assert batch["noise"].sharding == parallel.batch_sharding(mesh)
        assert len(batch["noise"].addressable_shards) == 8
        np.testing.assert_array_equal(np.asarray(batch["noise"]), expected["noise"])


def test_prefetch_reraises_the_producers_error():
    def broken():
        yield {"x": np.zeros(8)}
        raise OSError("disk gone")
    batches = pipeline.global_batches(broken(), parallel.data_mesh())
    next(batches)
    with pytest.raises(OSError, match="disk gone"):
        next(batches)


def test_folder_file_that_fails_late_is_dropped_not_fatal(tmp_path):
    from PIL import Image
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(np.full((5, 5, 3), i, np.uint8)).save(tmp_path / c / f"{i}.png")
    png = (tmp_path / "a" / "0.png").read_bytes()
    (tmp_path / "a" / "0.png").write_bytes(png[:30])  # valid header, broken body
    source = sources.image_folder(str(tmp_path), check_decode=False)
    assert source.num_examples == 8
    batches = _take(_train(source, global_batch_size=7), 4)
    labels = np.concatenate([b["label"] for b in batches])
    assert len(labels) == 28 and np.bincount(labels).tolist() == [12, 16]  # 3 + 4 per epoch


def test_tfds_source_streams_per_process_and_evaluates_once(tfds_dir):
    source = sources.get_source("tfds:tiny_images", "train", data_dir=tfds_dir)
    first_epoch = []
    for p in range(2):
        batches = _take(pipeline.train_batches(
            source, lambda image, seed: {"value": image[0, 0, 0]}, global_batch_size=10,
            seed=1, process_index=p, process_count=2), 5)
        first_epoch.append(set(np.concatenate([b["value"] for b in batches]).tolist()))
        np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]) % 2,
                                      np.concatenate([b["value"] for b in batches]) % 2)
    assert not first_epoch[0] & first_epoch[1]
    assert first_epoch[0] | first_epoch[1] == set(range(50))
    resumed = _take(pipeline.train_batches(
        source, lambda image, seed: {"value": image[0, 0, 0]}, global_batch_size=10, seed=1,
        start_step=7, process_index=1, process_count=2), 1)[0]
    straight = _take(pipeline.train_batches(
        source, lambda image, seed: {"value": image[0, 0, 0]}, global_batch_size=10, seed=1,
        process_index=1, process_count=2), 8)[7]
    np.testing.assert_array_equal(resumed["value"], straight["value"])
    values = []
    for p in range(3):
        for b in pipeline.eval_batches(source, lambda image, seed: {"value": image[0, 0, 0]},
                                       global_batch_size=12, process_index=p, process_count=3
                                       ).as_numpy_iterator():
            values += b["value"][b["mask"]].tolist()
    assert sorted(values) == list(range(50))


def _digits_batches(num_parallel_calls, threads, monkeypatch):
    """The first 3 batches of SimCLR-augmented digits with ``num_parallel_calls`` for the
    pipeline's map (its AUTOTUNE) on a private pool of ``threads`` (0: TF's shared one)."""
    monkeypatch.setattr(pipeline, "AUTOTUNE", num_parallel_calls)
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    source = sources.get_source("digits", image_size=16)
    batches = pipeline.train_batches(source, recipes.make_recipe("simclr", size=12),
                                     global_batch_size=32, seed=3, process_index=0,
                                     process_count=1)
    return _take(batches.with_options(options), 3)


def test_batches_do_not_depend_on_tf_data_parallelism(monkeypatch):
    """Bitwise the same images, augmentations and labels with one map call on one thread
    as with AUTOTUNE's calls on 8 private threads."""
    sequential = _digits_batches(1, 1, monkeypatch)
    parallel_ = _digits_batches(tf.data.AUTOTUNE, 8, monkeypatch)
    for expected, actual in zip(sequential, parallel_, strict=True):
        assert expected.keys() == actual.keys() == {"views", "label"}
        for key in expected:
            np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


@pytest.mark.parametrize("kind", ["indexed", "tfds"])
def test_with_index_each_example_carries_its_row_of_the_split(kind, tfds_dir):
    """PIRL's memory bank rows: ``index`` names the example, whichever process reads it,
    in every epoch: one image per index and one index per image (each tfds image is filled
    with its own number; a digit's row gives its label)."""
    if kind == "tfds":
        source = sources.get_source("tfds:tiny_images", "train", data_dir=tfds_dir)
        value = lambda image, seed: {"value": tf.cast(image[0, 0, 0], tf.int32)}  # noqa: E731
    else:
        source = sources.get_source("digits", image_size=8)
        value = lambda image, seed: {"value": tf.zeros([], tf.int32)}  # noqa: E731
    assert source.num_indices == source.num_examples
    pairs = set()
    for p in range(2):
        for b in _take(pipeline.train_batches(source, value, global_batch_size=10, seed=3,
                                              process_index=p, process_count=2,
                                              with_index=True), 12):
            assert b["index"].dtype == np.int32
            if kind == "indexed":
                np.testing.assert_array_equal(source.labels[b["index"]], b["label"])
            pairs |= set(zip(b["index"].tolist(), b["value"].tolist(), strict=True))
    indices = {i for i, _ in pairs}
    assert indices <= set(range(source.num_indices)) and len(indices) >= 50
    if kind == "tfds":  # 12 batches of 5 per process: every image, most of them twice
        assert len(pairs) == len(indices) == len({v for _, v in pairs}) == 50
