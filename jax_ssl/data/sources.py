"""Where images come from, named by one config string (DESIGN.md §1).

=====================  ====================================================================
``digits``             scikit-learn's 1,797 real 8×8 handwritten digits, upsampled; fixed split
``fashion_mnist``      Fashion-MNIST's four idx files (found or fetched, see fashion_mnist.py)
``folder:<path>``      one sub-folder per class; ``{split}`` in the path is replaced by the split
``npz:<path>``         arrays in a NumPy ``.npz``: ``images`` uint8 [N, H, W(, 3)], ``labels``,
                       optionally ``class_names`` (and ``boxes``, read by the Déjà vu test);
                       ``{split}`` in the path is replaced by the split; held in memory
``tfds:<name>``        a TFDS dataset in ``data_dir`` (local or ``gs://``), read per process
=====================  ====================================================================

Every source yields ``{"image": uint8 [H, W, 3], "label": int32}``; greyscale and RGBA
become RGB. Two kinds exist because they resume differently: an :class:`IndexedSource`
loads example ``i`` on demand (in-memory arrays, files of a folder), so the pipeline
shuffles indices and can start anywhere; a :class:`TFDSSource` is read sequentially
from its record files.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Leading bytes of the formats tf.io.decode_image reads; a file without them is not an image.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a")
DIGITS_TEST_FRACTION = 1 / 6
DIGITS_SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class IndexedSource:
    """A split whose example ``i`` can be loaded directly.

    ``load(index)`` maps a scalar int64 tensor to a uint8 [H, W, 3] image tensor (inside
    tf.data, graph mode); ``labels`` holds every example's label, in index order.
    ``greyscale``: the three channels ``load`` gives are copies of one. ``image_shape``:
    (H, W, 3) when every image has it and the split is held in memory (the sources whose
    training augmentation can run on the device), else None.
    """
    name: str
    split: str
    labels: np.ndarray
    num_classes: int
    load: Callable[[tf.Tensor], tf.Tensor]
    class_names: tuple[str, ...] = ()
    greyscale: bool = False
    image_shape: tuple[int, int, int] | None = None
    paths: np.ndarray | None = None  # an image folder's files, in index order

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    @property
    def num_indices(self) -> int:
        """Bound of the training batches' ``index`` (``pipeline.train_batches``)."""
        return self.num_examples


@dataclasses.dataclass(frozen=True)
class TFDSSource:
    """A TFDS split; each process reads ``tfds.split_for_jax_process`` of it."""
    name: str
    split: str
    data_dir: str | None
    num_examples: int
    num_classes: int
    class_names: tuple[str, ...] = ()

    def _process_split(self, process_index: int, process_count: int):
        import tensorflow_datasets as tfds

        return tfds.split_for_jax_process(
            self.split, process_index=process_index, process_count=process_count)

    def num_examples_for(self, process_index: int, process_count: int) -> int:
        """How many examples one process reads."""
        import tensorflow_datasets as tfds

        info = tfds.builder(self.name, data_dir=self.data_dir).info
        return info.splits[self._process_split(process_index, process_count)].num_examples

    @property
    def _whole_split(self) -> str:
        return self.split.split("[")[0]  # "train[:10%]" -> "train"

    @property
    def num_indices(self) -> int:
        """Bound of the records' ``index``: the size of the whole split it slices."""
        import tensorflow_datasets as tfds

        info = tfds.builder(self.name, data_dir=self.data_dir).info
        return info.splits[self._whole_split].num_examples

    def records(self, process_index: int, process_count: int, *, shuffle_seed: int | None,
                with_index: bool = False):
        """Undecoded ``{"image": encoded bytes, "label"}`` of this process's part of the split.

        ``shuffle_seed`` None reads the files in order (evaluation). ``with_index``: also
        ``index``, the record's row in the whole split (from TFDS's record ids: its file's
        offset plus its place in the file), the same however the split is read.
        """
        import tensorflow_datasets as tfds

        builder = tfds.builder(self.name, data_dir=self.data_dir)
        split = self._process_split(process_index, process_count)
        read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, try_autocache=False,
                                      add_tfds_id=with_index)
        dataset = builder.as_dataset(
            split=split, shuffle_files=shuffle_seed is not None, read_config=read_config,
            decoders={"image": tfds.decode.SkipDecoding()})
        if not with_index:
            return dataset.map(lambda ex: {"image": ex["image"], "label": ex["label"]})
        lengths = builder.info.splits[self._whole_split].shard_lengths
        offsets = tf.constant(np.cumsum([0, *lengths[:-1]]), tf.int64)

        def index(tfds_id):  # "<name>-<split>.tfrecord-<file>-of-<files>__<record>"
            parts = tf.strings.split(tfds_id, "__", maxsplit=1)
            file_name, record = parts[0], parts[1]
            file = tf.strings.regex_replace(file_name, r"^.*-(\d+)-of-\d+$", r"\1")
            return (tf.gather(offsets, tf.strings.to_number(file, tf.int64))
                    + tf.strings.to_number(record, tf.int64))
        return dataset.map(lambda ex: {"image": ex["image"], "label": ex["label"],
                                       "index": index(ex["tfds_id"])})


def get_source(name: str, split: str = "train", *, data_dir: str | None = None,
               image_size: int | None = None):
    """The source that a config's ``data.source`` string names (see the module docstring).

    ``image_size`` is the side to which ``digits`` upsamples (default 32); ``data_dir``
    is where ``fashion_mnist`` and ``tfds:`` look for their files.
    """
    if name == "digits":
        return digits(split, image_size=image_size or 32)
    if name == "fashion_mnist":
        return fashion_mnist(split, data_dir=data_dir)
    if name.startswith("folder:"):
        return image_folder(name.removeprefix("folder:").replace("{split}", split), split)
    if name.startswith("tfds:"):
        return tfds_source(name.removeprefix("tfds:"), split, data_dir=data_dir)
    if name.startswith("npz:"):
        return npz_arrays(npz_path(name, split), split)
    raise ValueError(
        f"unknown data source {name!r}; use 'digits', 'fashion_mnist', 'folder:<path>' "
        "(one sub-folder per class, '{split}' is replaced by the split), 'npz:<path>' or "
        "'tfds:<name>'.")


def _check_split(name: str, split: str, splits) -> None:
    if split not in splits:
        raise ValueError(f"{name} has splits {sorted(splits)}, not {split!r}.")


def array_source(name, split, images, labels, class_names) -> IndexedSource:
    """In-memory uint8 images [N, H, W] (greyscale) or [N, H, W, 3]."""
    images = tf.constant(images)
    greyscale = images.shape.rank == 3

    def load(index):
        image = tf.gather(images, index)
        return tf.image.grayscale_to_rgb(image[..., None]) if greyscale else image

    return IndexedSource(name, split, np.asarray(labels, np.int32), len(class_names), load,
                         tuple(class_names), greyscale, (*images.shape[1:3], 3))


def subset(source: IndexedSource, indices) -> IndexedSource:
    """Example j is ``source``'s example ``indices[j]`` (e.g. a low-label subset)."""
    if not isinstance(source, IndexedSource):
        raise ValueError(f"{source.name} is read sequentially (TFDS): a subset of its "
                         "examples needs an indexed source (an image folder, npz or arrays).")
    indices = np.asarray(indices, np.int64)
    index_table = tf.constant(indices)
    return dataclasses.replace(
        source, labels=source.labels[indices],
        load=lambda index: source.load(tf.gather(index_table, index)),
        paths=None if source.paths is None else source.paths[indices])


def crops_of(source: IndexedSource, indices, boxes) -> IndexedSource:
    """Example j is ``source``'s image ``indices[j]`` cut to ``boxes[j]`` (y0, x0, y1,
    x1 pixels, end-exclusive), with that image's label; the images load as the
    pipeline asks for them, so a folder's are read from disk then."""
    chosen = subset(source, indices)
    box_table = tf.constant(np.asarray(boxes, np.int32).reshape(-1, 4))

    def load(index):
        y0, x0, y1, x1 = tf.unstack(tf.gather(box_table, index))
        return chosen.load(index)[y0:y1, x0:x1]

    return dataclasses.replace(chosen, name=f"{source.name} crops", load=load,
                               image_shape=None)


def npz_path(name: str, split: str) -> str:
    """The file an ``npz:<path>`` source string names for ``split``."""
    return name.removeprefix("npz:").replace("{split}", split)


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of an npz source's file, checked (module docstring); ``class_names``
    filled in as the label numbers when the file has none."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"npz source {path!r} does not exist.")
    with tf.io.gfile.GFile(path, "rb") as f, np.load(f) as file:
        arrays = {name: file[name] for name in file.files}
    missing = {"images", "labels"} - set(arrays)
    if missing:
        raise ValueError(f"npz source {path!r} lacks {sorted(missing)}; it needs 'images' "
                         "(uint8 [N, H, W] or [N, H, W, 3]) and 'labels' ([N] ints).")
    images, labels = arrays["images"], arrays["labels"]
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError(f"npz source {path!r}: 'images' must be uint8 [N, H, W] or "
                         f"[N, H, W, 3] with one label each, not {images.dtype} "
                         f"{list(images.shape)} with {len(labels)} labels.")
    if "class_names" not in arrays:
        arrays["class_names"] = np.array([str(c) for c in range(int(labels.max()) + 1)])
    return arrays


def npz_arrays(path: str, split: str = "train") -> IndexedSource:
    """The images and labels of a ``.npz`` (module docstring), held in memory."""
    arrays = read_npz(path)
    return array_source(f"npz:{path}", split, arrays["images"], arrays["labels"],
                        arrays["class_names"].tolist())


def digits(split: str = "train", *, image_size: int = 32) -> IndexedSource:
    """scikit-learn's bundled digits: 1,797 greyscale 8×8 images of 0–9, no download.

    Pixel values 0–16 are scaled to 0–255 and upsampled bilinearly to ``image_size``.
    The split is fixed: per class, a seeded 1/6 of the images is ``test``, the rest
    ``train`` (1,498 / 299 images).
    """
    from sklearn.datasets import load_digits

    _check_split("digits", split, ("train", "test"))
    bunch = load_digits()
    images = bunch.images.astype(np.float32) * (255.0 / 16.0)
    labels = bunch.target.astype(np.int32)
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    test = np.zeros(len(labels), bool)
    for c in range(10):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[:round(len(members) * DIGITS_TEST_FRACTION)]] = True
    keep = test if split == "test" else ~test
    resized = tf.image.resize(images[keep][..., None], (image_size, image_size), "bilinear",
                              antialias=True)
    resized = np.clip(np.round(resized.numpy()[..., 0]), 0, 255).astype(np.uint8)
    return array_source("digits", split, resized, labels[keep],
                         tuple(str(c) for c in range(10)))


def fashion_mnist(split: str = "train", *, data_dir: str | None = None) -> IndexedSource:
    """Fashion-MNIST 28×28 greyscale, 60,000 train / 10,000 test, TFDS's label order."""
    from jax_ssl.data import fashion_mnist as fm

    _check_split("fashion_mnist", split, ("train", "test"))
    images, labels = fm.load(data_dir)[split]
    return array_source("fashion_mnist", split, images, labels, fm.CLASS_NAMES)


def _looks_like_image(path: str) -> bool:
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            head = f.read(16)
    except (OSError, tf.errors.OpError):
        return False
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG, PNG, BMP, GIF (first frame) or WebP bytes → uint8 [H, W, 3]."""
    # TF's default JPEG IDCT is the fast one, off by up to 80 levels on fine detail; the
    # accurate one is what PIL (and so torchvision) decode with.
    image = tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    image.set_shape([None, None, 3])
    return image


def _decodes(path: str) -> bool:
    try:
        decode_image(tf.io.read_file(path))
    except tf.errors.OpError:
        return False
    return True


def image_folder(root: str, split: str = "train", *, check_decode: bool | None = None,
                 threads: int = 16) -> IndexedSource:
    """Images in ``root/<class>/**``, classes in sorted order (torchvision's ImageFolder).

    Every file is checked before training starts: files that are not images by their
    leading bytes are skipped, and with ``check_decode`` (default: folders of up to
    50,000 images) each is also decoded once, which catches truncated files. Skipped
    files are counted and logged once with their paths. ``root`` may be a ``gs://`` path.
    """
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist or is not a directory.")
    class_names = sorted(d.rstrip("/") for d in tf.io.gfile.listdir(root)
                         if tf.io.gfile.isdir(os.path.join(root, d)))
    if not class_names:
        raise ValueError(f"image folder {root!r} has no class sub-folders; expected "
                         f"{root}/<class>/<image files>.")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        for directory, _, files in sorted(tf.io.gfile.walk(os.path.join(root, name))):
            for file in sorted(files):
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(directory, file))
                    labels.append(label)
    if check_decode is None:
        check_decode = len(paths) <= 50_000
    check = _decodes if check_decode else _looks_like_image
    with ThreadPoolExecutor(threads) as pool:  # file reads and TF decodes release the GIL
        good = np.fromiter(pool.map(check, paths), bool, len(paths))
    if not good.all():
        bad = [p for p, ok in zip(paths, good, strict=False) if not ok]
        log.warning("image folder %s: skipping %d unreadable or corrupt file(s) of %d: %s",
                    root, len(bad), len(paths), ", ".join(bad))
    paths = np.asarray(paths, dtype=object)[good]
    labels = np.asarray(labels, np.int32)[good]
    if not len(paths):
        raise ValueError(f"image folder {root!r} has no readable images with extensions "
                         f"{', '.join(IMAGE_EXTENSIONS)}.")
    paths_tensor = tf.constant(paths.astype(str))

    def load(index):
        return decode_image(tf.io.read_file(tf.gather(paths_tensor, index)))

    return IndexedSource(f"folder:{root}", split, labels, len(class_names), load,
                         tuple(class_names), paths=paths)


def unknown_tfds_name(name: str, data_dir: str | None) -> str:
    """One line for a TFDS name that is neither registered nor in ``data_dir``, with
    the registered names closest to it (the list is in the installed package: nothing
    is downloaded)."""
    import tensorflow_datasets as tfds

    base = name.split("/")[0].split(":")[0]  # name[/config][:version]
    close = difflib.get_close_matches(base, tfds.list_builders(with_community_datasets=False),
                                      n=3)
    hint = (f"did you mean {', '.join(close)}?" if close
            else "tfds.list_builders() lists the registered ones.")
    return (f"TFDS dataset {name!r} not found: it is neither registered with TFDS nor "
            f"prepared in data_dir={data_dir!r}; {hint}")


def tfds_source(name: str, split: str = "train", *, data_dir: str | None = None) -> TFDSSource:
    """A prepared TFDS dataset with ``image`` and ``label`` features."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        info = builder.info
    except tfds.core.DatasetNotFoundError:  # its message lists every TFDS dataset
        raise ValueError(unknown_tfds_name(name, data_dir)) from None
    except Exception as e:  # TFDS raises several types for an unknown or absent dataset
        raise ValueError(f"TFDS dataset {name!r} not found in data_dir={data_dir!r}: {e}") from e
    if "image" not in info.features or "label" not in info.features:
        raise ValueError(f"TFDS dataset {name!r} needs 'image' and 'label' features; it has "
                         f"{sorted(info.features)}.")
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in data_dir={data_dir!r}; run "
            f"`tfds build {name} --data_dir=...` (or download_and_prepare) first.")
    _check_split(f"TFDS dataset {name!r}", split.split("[")[0], info.splits.keys())
    label = info.features["label"]
    return TFDSSource(name, split, data_dir, info.splits[split].num_examples,
                      label.num_classes, tuple(label.names))
