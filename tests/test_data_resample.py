"""jax_ssl.data.resample against PIL's float resampling and tf.image.resize(antialias=True)."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from jax_ssl.data import augment as A
from jax_ssl.data import resample

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def _pil_resize(crop, size, method):
    """PIL's resampling of a float image ("F" mode: double coefficients, no rounding)."""
    return np.stack([np.asarray(Image.fromarray(crop[..., c].astype(np.float32), "F").resize(
        (size[1], size[0]), PIL_FILTERS[method])) for c in range(crop.shape[-1])], -1)


def _random_boxes(rng, height, width, n):
    boxes = []
    for _ in range(n):
        h, w = rng.integers(1, height + 1), rng.integers(1, width + 1)
        boxes.append([rng.integers(0, height - h + 1), rng.integers(0, width - w + 1), h, w])
    return np.array(boxes, np.int32)


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("size", [(24, 24), (7, 40), (96, 96)])
@pytest.mark.parametrize("image_size", [(70, 90), (28, 20)])  # blocks; dense products
def test_crop_and_resize_matches_pil_and_tf(method, dtype, size, image_size):
    height, width = image_size
    rng = np.random.default_rng(hash((method, size, image_size)) % 2**32)
    image = rng.integers(0, 256, (height, width, 3)).astype(dtype)
    # Shrinking (antialiased), enlarging, 1-pixel crops and the whole image.
    boxes = np.concatenate([_random_boxes(rng, height, width, 5),
                            [[0, 0, height, width], [3, 4, 1, 1]]])
    out = resample.crop_and_resize(tf.constant(image), tf.constant(boxes), size, method)
    out = out.numpy()
    assert out.shape == (len(boxes), *size, 3) and out.dtype == np.float32
    for view, (top, left, h, w) in zip(out, boxes, strict=True):
        crop = image[top:top + h, left:left + w]
        # Float32 coordinates: ~1e-5 of the value range, far below a grey level.
        np.testing.assert_allclose(view, _pil_resize(crop.astype(np.float64), size, method),
                                   atol=0.03)
        np.testing.assert_allclose(view, tf.image.resize(crop, size, method, antialias=True),
                                   atol=0.03)


def test_dense_products_equal_the_blocks_on_small_images():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (28, 28, 3)).astype(np.uint8)
    boxes = tf.constant(np.concatenate([_random_boxes(rng, 28, 28, 6), [[0, 0, 28, 28]]]))
    assert 28 * 28 <= resample.DENSE_MAX_PIXELS
    for method in resample.KERNELS:
        dense = resample.crop_and_resize(image, boxes, (28, 28), method, gain=1 / 255)
        # An image of unknown shape takes the block-banded path.
        blocks = tf.function(
            lambda x, m=method: resample.crop_and_resize(x, boxes, (28, 28), m, gain=1 / 255),
            input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])(image)
        np.testing.assert_allclose(dense.numpy(), blocks.numpy(), atol=3e-5)


def test_crop_and_resize_gain_and_errors():
    image = np.full((30, 40, 3), 51, np.uint8)
    out = resample.crop_and_resize(image, tf.constant([[2, 3, 20, 25]]), (8, 8), "bicubic",
                                   gain=1 / 255)
    np.testing.assert_allclose(out.numpy(), 0.2, atol=1e-6)  # weights sum to the gain
    with pytest.raises(ValueError, match="'bilinear' or 'bicubic'"):
        resample.crop_and_resize(image, tf.constant([[0, 0, 5, 5]]), (4, 4), "lanczos")


def test_crops_of_many_sizes_share_few_matmul_shapes():
    # Windows and widths are rounded up so random crops reuse oneDNN's matmul setups.
    spans = set()
    for n_in in range(97, 400):
        _, span, _ = resample.axis_weights(tf.constant([n_in]), 96, "bicubic",
                                           tf.constant([1.0]))
        spans.add(int(span[0]))
    assert len(spans) <= 10 and all(s % resample._SPAN_STEP == 0 for s in spans)


def test_random_resized_crops_resize_their_boxes():
    image = np.random.default_rng(1).integers(0, 256, (60, 80, 3)).astype(np.uint8)
    seed = tf.constant([3, 7], tf.int64)
    views = A.random_resized_crops(image, seed, 4, 32, scale=(0.05, 1.0), method="bicubic")
    boxes = A.resized_crop_boxes(60, 80, seed, 4, (0.05, 1.0)).numpy()
    assert len({tuple(b) for b in boxes}) == 4
    for view, (top, left, h, w) in zip(views.numpy(), boxes, strict=True):
        reference = _pil_resize(image[top:top + h, left:left + w].astype(np.float64), (32, 32),
                                "bicubic")
        np.testing.assert_allclose(view, np.clip(reference / 255, 0, 1), atol=1e-4)
    single = A.random_resized_crop(image, seed, 32, scale=(0.05, 1.0), method="bicubic")
    first = A.random_resized_crops(image, seed, 1, 32, scale=(0.05, 1.0), method="bicubic")
    np.testing.assert_array_equal(single.numpy(), first[0].numpy())
