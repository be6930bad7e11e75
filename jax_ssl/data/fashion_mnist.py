"""Fashion-MNIST's four idx files: found, or fetched into a cache, then checked and parsed.

Zalando's Fashion-MNIST (MIT licence): 60,000 training and 10,000 test images of 28×28
greyscale uint8, 10 classes, in TFDS's label order. :func:`load` looks for the files in

1. ``data_dir``, when given (and then only there);
2. ``/usr/share/datasets/fashion-mnist/`` (Debian/Ubuntu package ``dataset-fashion-mnist``);
3. the cache, ``$JAX_SSL_DATA_DIR/fashion_mnist`` or ``~/.cache/jax_ssl/fashion_mnist``;

and otherwise fetches them into the cache: ``apt-get download dataset-fashion-mnist`` and
``dpkg -x`` where those exist (no root needed), the URLs TFDS downloads from elsewhere.
A fetch fills a temporary directory beside the cache and renames it into place only
when all four files parse, so an interrupted fetch never leaves a cache that looks
complete.
"""
from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.request

import numpy as np

log = logging.getLogger(__name__)

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
NUM_TRAIN, NUM_TEST = 60_000, 10_000
FILES = {  # split -> (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # TFDS's source
_MAGIC = {0x00000801: 1, 0x00000803: 3}  # uint8 labels (rank 1) and images (rank 3)


def read_idx(path: str) -> np.ndarray:
    """An idx file (gzipped or not) as a uint8 array; a bad file is a ValueError naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, OSError) as e:
        raise ValueError(f"{path}: unreadable or truncated gzip data ({e}); delete it and "
                         "fetch it again.") from e
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic not in _MAGIC:
        raise ValueError(f"{path} is not a uint8 idx file (magic number "
                         f"{'missing' if magic is None else hex(magic)}, expected 0x801 or "
                         "0x803).")
    rank = _MAGIC[magic]
    header = 4 + 4 * rank
    if len(data) < header:
        raise ValueError(f"{path}: truncated idx header; delete it and fetch it again.")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes where its header {shape} needs "
                         f"{expected}; the file is truncated or corrupt — delete it and fetch "
                         "it again.")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _read_split(directory: str, split: str):
    images_file, labels_file = (os.path.join(directory, f) for f in FILES[split])
    images, labels = read_idx(images_file), read_idx(labels_file)
    count = NUM_TRAIN if split == "train" else NUM_TEST
    if images.shape != (count, 28, 28):
        raise ValueError(f"{images_file}: images of shape {images.shape}, expected "
                         f"({count}, 28, 28) for Fashion-MNIST {split}.")
    if labels.shape != (count,) or labels.max() > 9:
        raise ValueError(f"{labels_file}: {labels.shape[0]} labels up to {labels.max()}, "
                         f"expected {count} labels in 0–9 for Fashion-MNIST {split}.")
    return images, labels.astype(np.int32)


def _read(directory: str) -> dict:
    return {split: _read_split(directory, split) for split in FILES}


def _has_files(directory: str) -> bool:
    return all(os.path.isfile(os.path.join(directory, f)) for pair in FILES.values()
               for f in pair)


def default_cache_dir() -> str:
    root = os.environ.get("JAX_SSL_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "jax_ssl")
    return os.path.join(root, "fashion_mnist")


def _fetch_with_apt(target: str) -> None:
    """The Debian package's files into ``target`` (apt-get download + dpkg -x, no root)."""
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=work, check=True,
                       capture_output=True, timeout=600)
        (deb,) = [f for f in os.listdir(work) if f.endswith(".deb")]
        subprocess.run(["dpkg", "-x", deb, "root"], cwd=work, check=True,
                       capture_output=True, timeout=600)
        unpacked = os.path.join(work, "root", SYSTEM_DIR.lstrip("/"))
        for pair in FILES.values():
            for name in pair:
                shutil.copy(os.path.join(unpacked, name), os.path.join(target, name))


def _fetch_with_urls(target: str) -> None:
    for pair in FILES.values():
        for name in pair:
            urllib.request.urlretrieve(URL + name, os.path.join(target, name))


def fetch(cache_dir: str) -> None:
    """Fills ``cache_dir`` with the four validated files, atomically (see module doc)."""
    parent = os.path.dirname(os.path.abspath(cache_dir))
    os.makedirs(parent, exist_ok=True)
    errors = []
    fetchers = ([_fetch_with_apt] if shutil.which("apt-get") and shutil.which("dpkg") else []
                ) + [_fetch_with_urls]
    for fetcher in fetchers:
        partial = tempfile.mkdtemp(prefix=".fashion_mnist-partial-", dir=parent)
        try:
            log.warning("fetching Fashion-MNIST into %s (%s)", cache_dir, fetcher.__name__)
            fetcher(partial)
            _read(partial)  # all four files parse with the right counts
            if os.path.exists(cache_dir):  # an incomplete cache someone else left
                shutil.rmtree(cache_dir)
            os.replace(partial, cache_dir)
            return
        except Exception as e:  # each way of fetching can fail in its own way; try the next
            errors.append(f"{fetcher.__name__}: {e}")
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    raise RuntimeError("could not fetch Fashion-MNIST: " + "; ".join(errors))


def load(data_dir: str | None = None, *, cache_dir: str | None = None, fetch_missing: bool = True
         ) -> dict:
    """{"train": (images uint8 [60000, 28, 28], labels int32), "test": (10000 of each)}."""
    if data_dir is not None:
        if not _has_files(data_dir):
            raise FileNotFoundError(f"data_dir {data_dir!r} lacks the Fashion-MNIST files "
                                    f"{[f for pair in FILES.values() for f in pair]}.")
        return _read(data_dir)
    cache_dir = cache_dir or default_cache_dir()
    for directory in (SYSTEM_DIR, cache_dir):
        if _has_files(directory):
            return _read(directory)
    if not fetch_missing:
        raise FileNotFoundError(f"Fashion-MNIST is neither in {SYSTEM_DIR} nor in {cache_dir}.")
    try:
        fetch(cache_dir)
    except RuntimeError as e:
        raise RuntimeError(f"Fashion-MNIST is not in {SYSTEM_DIR} or {cache_dir} and {e}. "
                           f"Install the Debian package {DEBIAN_PACKAGE}, or put the four "
                           "idx files in a directory and pass data_dir=.") from e
    return _read(cache_dir)
