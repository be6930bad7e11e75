"""Fashion-MNIST idx files: parsing, clear errors for bad files, atomic fetch, the real data."""
import gzip
import os

import numpy as np
import pytest

from jax_ssl.data import fashion_mnist as fm
from jax_ssl.data import sources


def write_idx(path, array, *, compress=True, magic=None):
    rank = array.ndim
    header = (magic or (0x800 | rank)).to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)


def fake_dataset(directory, train=fm.NUM_TRAIN, test=fm.NUM_TEST):
    rng = np.random.default_rng(0)
    os.makedirs(directory, exist_ok=True)
    for split, n in (("train", train), ("test", test)):
        images_file, labels_file = fm.FILES[split]
        write_idx(os.path.join(directory, images_file),
                  rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(os.path.join(directory, labels_file), np.arange(n) % 10)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_images_and_labels(tmp_path, compress):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), np.uint8)
    write_idx(tmp_path / "i", images, compress=compress)
    write_idx(tmp_path / "l", np.array([3, 1, 4, 1, 5], np.uint8), compress=compress)
    np.testing.assert_array_equal(fm.read_idx(str(tmp_path / "i")), images)
    np.testing.assert_array_equal(fm.read_idx(str(tmp_path / "l")), [3, 1, 4, 1, 5])


def test_truncated_foreign_and_corrupt_files_are_named(tmp_path):
    write_idx(tmp_path / "images", np.zeros((5, 28, 28), np.uint8), compress=False)
    data = (tmp_path / "images").read_bytes()
    (tmp_path / "short").write_bytes(data[:-100])
    with pytest.raises(ValueError, match=r"short: 3836 bytes where its header \(5, 28, 28\) "
                                         r"needs 3936.*truncated"):
        fm.read_idx(str(tmp_path / "short"))
    write_idx(tmp_path / "foreign", np.zeros((5,), np.uint8), magic=0x0D03)
    with pytest.raises(ValueError, match=r"foreign is not a uint8 idx file \(magic number 0xd03"):
        fm.read_idx(str(tmp_path / "foreign"))
    noisy = np.random.default_rng(0).integers(0, 256, 3936, np.uint8).tobytes()
    (tmp_path / "cut.gz").write_bytes(gzip.compress(noisy)[:200])
    with pytest.raises(ValueError, match="cut.gz: unreadable or truncated gzip"):
        fm.read_idx(str(tmp_path / "cut.gz"))


def test_wrong_count_is_named(tmp_path):
    fake_dataset(tmp_path, train=100)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: images of shape "
                                         r"\(100, 28, 28\), expected \(60000, 28, 28\)"):
        fm.load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="lacks the Fashion-MNIST files"):
        fm.load(str(tmp_path / "empty"))


def test_interrupted_fetch_leaves_no_complete_looking_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "fashion_mnist"
    monkeypatch.setattr(fm.shutil, "which", lambda name: None)  # no apt: the URL fetcher

    def interrupted(target):
        fake_dataset(target, train=100)  # some files written, then the connection drops
        raise ConnectionError("network gone")

    monkeypatch.setattr(fm, "_fetch_with_urls", interrupted)
    monkeypatch.setattr(fm, "SYSTEM_DIR", str(tmp_path / "no_system_copy"))
    with pytest.raises(RuntimeError, match="network gone.*Install the Debian package"):
        fm.load(cache_dir=str(cache))
    assert not cache.exists()
    assert not list((tmp_path / "cache").iterdir())  # the partial directory is gone too

    monkeypatch.setattr(fm, "_fetch_with_urls", lambda target: fake_dataset(target))
    data = fm.load(cache_dir=str(cache))
    assert data["train"][0].shape == (60000, 28, 28) and fm._has_files(str(cache))


def test_data_dir_is_read_before_the_cache(tmp_path, monkeypatch):
    fake_dataset(tmp_path / "mine")
    monkeypatch.setattr(fm, "fetch", lambda cache_dir: pytest.fail("must not fetch"))
    assert fm.load(str(tmp_path / "mine"), cache_dir=str(tmp_path / "none"))["test"][0].shape == (
        10000, 28, 28)


def _real_files():
    for directory in (fm.SYSTEM_DIR, fm.default_cache_dir()):
        if fm._has_files(directory):
            return directory
    pytest.skip("the real Fashion-MNIST files are not on this machine (make demo fetches "
                "them into ~/.cache/jax_ssl/fashion_mnist)")


def test_real_dataset_counts_balance_and_range():
    data = fm.load(_real_files())
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = data[split]
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert images.min() == 0 and images.max() == 255
        assert np.bincount(labels).tolist() == [n // 10] * 10
    source = sources.get_source("fashion_mnist", "test", data_dir=_real_files())
    assert source.num_examples == 10000 and source.class_names[9] == "Ankle boot"
