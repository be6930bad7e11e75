"""Sources: the bundled digits, image folders (formats, corrupt files), npz arrays, TFDS
datasets."""
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from jax_ssl.data import sources


def test_digits_counts_split_and_range():
    train, test = sources.get_source("digits", "train"), sources.get_source("digits", "test")
    assert (train.num_examples, test.num_examples) == (1498, 299)
    assert train.num_classes == test.num_classes == 10
    # stratified: every class has 1/6 of its images in test
    for c in range(10):
        n_train, n_test = (train.labels == c).sum(), (test.labels == c).sum()
        assert abs(n_test - (n_train + n_test) / 6) <= 0.5
    image = sources.get_source("digits", "train", image_size=24).load(tf.constant(5, tf.int64))
    assert image.shape == (24, 24, 3) and image.dtype == tf.uint8
    image = image.numpy()
    assert (image[..., 0] == image[..., 2]).all() and image.max() > 200 and image.min() == 0


def test_digits_split_is_fixed_and_disjoint():
    def pixels(split):
        src = sources.digits(split, image_size=8)
        return {src.load(tf.constant(i, tf.int64)).numpy().tobytes()
                for i in range(src.num_examples)}
    train, test = pixels("train"), pixels("test")
    assert len(train & test) <= 3  # the digits set itself holds a few identical images
    np.testing.assert_array_equal(sources.digits("test").labels, sources.digits("test").labels)


def test_unknown_source_and_split_are_clear_errors():
    with pytest.raises(ValueError, match="unknown data source 'imagenet'.*tfds:<name>"):
        sources.get_source("imagenet")
    with pytest.raises(ValueError, match=r"digits has splits \['test', 'train'\], not 'val'"):
        sources.get_source("digits", "val")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes in every format, plus a corrupt, a truncated, an empty and a text file."""
    root = tmp_path_factory.mktemp("folder") / "train"
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), np.uint8)
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "nested").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "cat" / "rgb.jpg", quality=100, subsampling=0)
    Image.fromarray(rgb[..., 0]).save(root / "cat" / "grey.jpg")
    rgba = np.concatenate([rgb, np.full((20, 30, 1), 7, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(root / "cat" / "alpha.PNG")
    Image.fromarray(rgb).save(root / "dog" / "a.bmp")
    frames = [Image.fromarray(np.full((10, 12, 3), v, np.uint8)) for v in (40, 200)]
    frames[0].save(root / "dog" / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(rgb).save(root / "dog" / "nested" / "b.webp", lossless=True)
    (root / "dog" / "corrupt.jpg").write_bytes(rng.integers(0, 256, 500, np.uint8).tobytes())
    jpeg = (root / "cat" / "rgb.jpg").read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    (root / "dog" / "empty.png").write_bytes(b"")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root, rgb, rgba


def _images(source):
    return [source.load(tf.constant(i, tf.int64)).numpy() for i in range(source.num_examples)]


def test_folder_reads_every_format_and_reports_bad_files_once(image_folder, caplog):
    root, rgb, rgba = image_folder
    with caplog.at_level(logging.WARNING, logger="jax_ssl.data.sources"):
        source = sources.get_source(f"folder:{root.parent}/{{split}}", "train")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "skipping 3 unreadable or corrupt file(s) of 9" in warnings[0]
    for bad in ("corrupt.jpg", "truncated.jpg", "empty.png"):
        assert bad in warnings[0]
    assert source.class_names == ("cat", "dog") and source.num_classes == 2
    np.testing.assert_array_equal(source.labels, [0, 0, 0, 1, 1, 1])
    alpha, grey, jpg, bmp, gif, webp = _images(source)  # sorted paths within each class
    for image in (alpha, grey, jpg, bmp, gif, webp):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    np.testing.assert_array_equal(alpha, rgba[..., :3])  # alpha dropped, as PIL's convert
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    pil_jpg = np.asarray(Image.open(root / "cat" / "rgb.jpg").convert("RGB"), int)
    assert np.abs(jpg.astype(int) - pil_jpg).max() == 0  # the accurate IDCT, as PIL
    np.testing.assert_array_equal(bmp, rgb)
    assert gif.shape == (10, 12, 3) and np.abs(gif.astype(int) - 40).max() <= 2  # first frame
    np.testing.assert_array_equal(webp, rgb)


def test_folder_header_check_only(image_folder):
    root, _, _ = image_folder
    source = sources.image_folder(str(root), check_decode=False)
    assert source.num_examples == 7  # the truncated JPEG has a valid header


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sources.get_source(f"folder:{tmp_path}/missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        sources.get_source(f"folder:{tmp_path}")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("")
    with pytest.raises(ValueError, match="no readable images"):
        sources.get_source(f"folder:{tmp_path}")


def test_tfds_source(tfds_dir):
    source = sources.get_source("tfds:tiny_images", "train", data_dir=tfds_dir)
    assert (source.num_examples, source.num_classes) == (50, 2)
    assert source.class_names == ("even", "odd")
    assert [source.num_examples_for(p, 2) for p in range(2)] == [25, 25]
    with pytest.raises(ValueError, match="not found"):
        sources.get_source("tfds:no_such_dataset_here", data_dir=tfds_dir)


def test_npz_source_holds_its_arrays_and_names_what_is_wrong(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=np.array([0, 2, 1, 2, 0]),
             class_names=np.array(["a", "b", "c"]))
    source = sources.get_source(f"npz:{tmp_path}/{{split}}.npz", "train")
    assert source.num_examples == 5 and source.class_names == ("a", "b", "c")
    assert source.image_shape == (6, 7, 3)  # in memory: augmentable on the device
    np.testing.assert_array_equal(source.load(tf.constant(3, tf.int64)).numpy(), images[3])
    np.savez(tmp_path / "grey.npz", images=images[..., 0], labels=np.arange(5))
    grey = sources.get_source(f"npz:{tmp_path}/grey.npz")
    assert grey.greyscale and grey.num_classes == 5
    np.savez(tmp_path / "bad.npz", images=images.astype(np.float32), labels=np.arange(5))
    with pytest.raises(ValueError, match="must be uint8"):
        sources.get_source(f"npz:{tmp_path}/bad.npz")
    np.savez(tmp_path / "nolabels.npz", images=images)
    with pytest.raises(ValueError, match=r"lacks \['labels'\]"):
        sources.get_source(f"npz:{tmp_path}/nolabels.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sources.get_source(f"npz:{tmp_path}/test.npz")


def test_crops_of_cuts_each_image_to_its_box_and_keeps_its_label():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    source = sources.array_source("arrays", "train", images, [0, 1, 2, 1, 0], "abc")
    crops = sources.crops_of(source, [4, 1, 4], [(0, 0, 12, 10), (2, 3, 7, 9), (5, 1, 6, 4)])
    assert crops.labels.tolist() == [0, 1, 0] and crops.num_classes == 3
    for j, (i, (y0, x0, y1, x1)) in enumerate([(4, (0, 0, 12, 10)), (1, (2, 3, 7, 9)),
                                               (4, (5, 1, 6, 4))]):
        np.testing.assert_array_equal(crops.load(tf.constant(j, tf.int64)).numpy(),
                                      images[i, y0:y1, x0:x1])
