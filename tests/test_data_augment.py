"""jax_ssl.data.augment against torchvision's semantics, re-implemented in NumPy.

Random ops run over many seeds inside ``tf.data.Dataset.map`` (graph mode, as in the
pipeline); rates are checked against binomial bounds of about 5 standard deviations.
"""
import colorsys
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage, stats

from jax_ssl.data import augment as A

GRAY = np.array([0.299, 0.587, 0.114])
H, W = 48, 64


def _image(h=H, w=W, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _seeds(n, start=0):
    return np.stack([np.arange(start, start + n), np.full(n, 1234)], 1).astype(np.int64)


def _over_seeds(fn, n, start=0):
    """``fn(seed)`` for n seeds, run by ``Dataset.map``; NumPy arrays stacked on axis 0."""
    ds = tf.data.Dataset.from_tensor_slices(_seeds(n, start)).map(fn).batch(n)
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(ds)))


def _rate_bounds(p, n, k=5.0):
    sd = math.sqrt(p * (1 - p) / n)
    return p - k * sd, p + k * sd


# ------------------------------------------------------------ NumPy torchvision references


def np_gray(x):
    return x.astype(np.float64) @ GRAY


def np_brightness(x, b):
    return np.clip(b * x.astype(np.float64), 0, 1)


def np_contrast(x, c):
    return np.clip(c * x.astype(np.float64) + (1 - c) * np_gray(x).mean(), 0, 1)


def np_saturation(x, s):
    return np.clip(s * x.astype(np.float64) + (1 - s) * np_gray(x)[..., None], 0, 1)


def np_hue(x, h):
    out = [colorsys.hsv_to_rgb((hh + h) % 1.0, ss, vv)
           for hh, ss, vv in (colorsys.rgb_to_hsv(*px) for px in
                              x.reshape(-1, 3).astype(np.float64))]
    return np.asarray(out).reshape(x.shape)


NP_OPS = (np_brightness, np_contrast, np_saturation, np_hue)


def np_crop_params(rng, height, width, scale, ratio):
    """torchvision RandomResizedCrop.get_params, verbatim in NumPy."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, height - h + 1), rng.integers(0, width - w + 1), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


# ------------------------------------------------------------------------------- crops


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_random_resized_crop_shape_dtype_range(dtype, method):
    img = _image()
    img = (img * 255).astype(np.uint8) if dtype == "uint8" else img
    out = _over_seeds(lambda s: A.random_resized_crop(img, s, 24, method=method), 64)
    assert out.shape == (64, 24, 24, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() > 0.9 and out.min() < 0.1  # uint8 scaled by 1/255, not clipped flat
    # every view is a different crop
    assert len({o.tobytes() for o in out}) == 64


def test_random_resized_crop_scales_uint8_exactly():
    img = np.full((H, W, 3), 51, np.uint8)
    out = A.random_resized_crop(img, tf.constant([3, 4]), 20).numpy()
    np.testing.assert_allclose(out, 0.2, atol=1e-6)
    assert A.random_resized_crop(img, tf.constant([3, 4]), (10, 14)).shape == (10, 14, 3)


def test_random_resized_crop_antialiases():
    # scale 1 and the image's own ratio: the box is the whole image.
    noise = _image(seed=5)
    ratio = (W / H, W / H)
    assert [int(v) for v in A.resized_crop_box(H, W, tf.constant([1, 2]), (1, 1), ratio)] == [
        0, 0, H, W]
    out = A.random_resized_crop(noise, tf.constant([1, 2]), 12, scale=(1, 1), ratio=ratio)
    aliased = tf.image.resize(noise, [12, 12], antialias=False)
    # a 4-5x downscale averages ~20 pixels: far less variance than point sampling
    assert out.numpy().std() < 0.5 * aliased.numpy().std()


def _boxes(height, width, n, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), start=0):
    return _over_seeds(
        lambda s: tf.stack(A.resized_crop_box(height, width, s, scale, ratio)), n, start)


@pytest.mark.parametrize("scale", [(0.08, 1.0), (0.4, 1.0), (0.05, 0.14)])
def test_resized_crop_box_in_bounds(scale):
    ratio = (3 / 4, 4 / 3)
    top, left, h, w = _boxes(H, W, 1500, scale, ratio).T
    assert (h > 0).all() and (w > 0).all() and (h <= H).all() and (w <= W).all()
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= H).all() and (left + w <= W).all()
    # some (area, ratio) in range rounds to (w, h): w = round(sqrt(A r)), h = round(sqrt(A / r))
    area_lo, area_hi = (w - 0.5) * (h - 0.5), (w + 0.5) * (h + 0.5)
    assert (area_hi >= scale[0] * H * W).all() and (area_lo <= scale[1] * H * W).all()
    r_lo, r_hi = (w - 0.5) / (h + 0.5), (w + 0.5) / (h - 0.5)
    assert (r_hi >= ratio[0]).all() and (r_lo <= ratio[1]).all()
    # and the whole range is used
    frac = h * w / (H * W)
    assert frac.min() < scale[0] + 0.1 * (scale[1] - scale[0])
    assert frac.max() > scale[1] - 0.2 * (scale[1] - scale[0])
    # offsets uniform: both extremes reached, mean relative offset 1/2
    room = H - h
    rel = top[room > 0] / room[room > 0]
    assert (top == 0).any() and (top == room).any()
    assert abs(rel.mean() - 0.5) < 0.05


@pytest.mark.parametrize("scale", [(0.08, 1.0), (0.5, 1.0)])
def test_resized_crop_box_distribution_matches_torchvision(scale):
    # (0.5, 1) on 48 x 64 rejects many candidates, so the 10-attempt loop matters.
    n = 2000
    ratio = (3 / 4, 4 / 3)
    ours = _boxes(H, W, n, scale, ratio)
    rng = np.random.default_rng(0)
    ref = np.array([np_crop_params(rng, H, W, scale, ratio) for _ in range(n)])
    for stat in (lambda b: b[:, 2] * b[:, 3], lambda b: b[:, 3] / b[:, 2],
                 lambda b: b[:, 0] / np.maximum(H - b[:, 2], 1)):
        assert stats.ks_2samp(stat(ours), stat(ref)).pvalue > 1e-4


@pytest.mark.parametrize("height,width,expected", [
    (8, 200, (0, 94, 8, 11)),    # too wide: h = H, w = round(8 · 4/3)
    (200, 8, (94, 0, 11, 8)),    # too tall: w = W, h = round(8 / (3/4))
])
def test_resized_crop_box_fallback_clamps_ratio(height, width, expected):
    # no candidate fits (h >= 10 > 8), so every seed gives torchvision's centre crop
    boxes = _boxes(height, width, 20)
    assert (boxes == np.array(expected)).all()
    assert np_crop_params(np.random.default_rng(0), height, width, (0.08, 1), (3 / 4, 4 / 3)) \
        == expected


def test_resized_crop_box_fallback_whole_image():
    # an area above the image never fits; the ratio is in range, so the whole image
    assert (_boxes(H, H, 10, scale=(1.5, 2.0)) == np.array([0, 0, H, H])).all()


def test_center_crop_eval_geometry():
    # torchvision: Resize(37) of 48 x 70 -> 37 x int(53.96) = 53; CenterCrop(32) offsets
    # round(2.5) = 2 and round(10.5) = 10 (half to even). A linear ramp survives an
    # antialiased resize to within ~0.1 px, so each output pixel tells its source
    # coordinate; an off-by-one size or offset moves it by ~1 px (checked below).
    height, width, size = 48, 70, 32
    rows = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None, None] / (height - 1),
                           (height, width, 3))
    cols = np.broadcast_to(np.arange(width, dtype=np.float32)[None, :, None] / (width - 1),
                           (height, width, 3))
    out_r = A.center_crop_eval(rows, size).numpy()
    out_c = A.center_crop_eval(cols, size).numpy()
    assert out_r.shape == out_c.shape == (size, size, 3) and out_r.dtype == np.float32
    j = np.arange(size)

    def source(offset, resized, full):
        return ((j + offset + 0.5) * full / resized - 0.5) / (full - 1)

    np.testing.assert_allclose(out_r[:, :, 0], np.broadcast_to(
        source(2, 37, height)[:, None], (size, size)), atol=2e-3)
    np.testing.assert_allclose(out_c[:, :, 0], np.broadcast_to(
        source(10, 53, width)[None, :], (size, size)), atol=2e-3)
    # round-half-up offsets or a rounded (not truncated) long side would be caught
    assert np.abs(out_r[:, 0, 0] - source(3, 37, height)).max() > 1e-2
    assert np.abs(out_c[0, :, 0] - source(11, 54, width)).max() > 1e-2
    assert A.center_crop_eval(rows, 20, resize_size=20).shape == (20, 20, 3)


@pytest.mark.parametrize("shape, size", [((28, 28), 28), ((28, 40), 24), ((40, 28), 20)])
def test_center_crop_eval_at_its_size_skips_resizing(shape, size):
    # A short side already at resize_size takes the no-resize path for images of known
    # shape; it must equal the resize path, which an image of unknown shape takes.
    image = np.random.default_rng(3).integers(0, 256, (*shape, 3)).astype(np.uint8)
    resize_size = min(shape)
    dynamic = tf.function(lambda x: A.center_crop_eval(x, size, resize_size),
                          input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    np.testing.assert_allclose(A.center_crop_eval(image, size, resize_size).numpy(),
                               dynamic(image).numpy(), atol=1e-6)


def test_rgb_to_grayscale_weights():
    image = _image(5, 4)
    np.testing.assert_allclose(A.rgb_to_grayscale(image).numpy(),
                               image @ np.array([[0.299], [0.587], [0.114]]), atol=1e-6)


def test_center_crop_eval_keeps_centre_centred():
    height, width = 48, 64
    yy, xx = np.mgrid[:height, :width]
    disk = ((yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2 < 10 ** 2)
    img = (np.repeat(disk[..., None], 3, -1) * 255).astype(np.uint8)
    out = A.center_crop_eval(img, 32).numpy()[..., 0]
    assert out.max() == pytest.approx(1.0, abs=1e-6) and out.min() >= 0.0
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 15.5) < 0.6 and abs(cx - 15.5) < 0.6


# ------------------------------------------------------------------------- determinism


def _view(image):
    def fn(seed):
        s = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
        x = A.random_resized_crop(image, s[0], 32)
        x = A.horizontal_flip(x, s[1])
        x = A.color_jitter(x, s[2], 0.4, 0.4, 0.2, 0.1, p=0.5)
        x = A.random_grayscale(x, s[3], 0.5)
        x = A.gaussian_blur(x, s[4], 0.5)
        x = A.solarize(x, s[5], 0.5)
        return A.normalize(x, A.IMAGENET_MEAN, A.IMAGENET_STD)
    return fn


def test_pure_function_of_image_and_seed():
    img = (_image() * 255).astype(np.uint8)
    first = _over_seeds(_view(img), 16)
    again = _over_seeds(_view(img), 16)
    np.testing.assert_array_equal(first, again)
    assert len({v.tobytes() for v in first}) == 16
    # eager execution draws the same randomness as the tf.data graph
    eager = _view(img)(tf.constant(_seeds(16)[3]))
    np.testing.assert_allclose(eager.numpy(), first[3], atol=1e-5)


# -------------------------------------------------------------------- flip, grayscale


def test_flip_rate_and_exact_mirror():
    img = _image(16, 12)
    out = _over_seeds(lambda s: A.horizontal_flip(img, s), 2000)
    same = (out == img).all(axis=(1, 2, 3))
    mirrored = (out == img[:, ::-1]).all(axis=(1, 2, 3))
    assert (same ^ mirrored).all()
    lo, hi = _rate_bounds(0.5, 2000)
    assert lo < mirrored.mean() < hi
    rate = _over_seeds(lambda s: A.horizontal_flip(img, s, p=tf.constant(0.2)), 2000)
    lo, hi = _rate_bounds(0.2, 2000)
    assert lo < (rate == img[:, ::-1]).all(axis=(1, 2, 3)).mean() < hi


def test_grayscale_rate_and_weights():
    img = _image(16, 12)
    out = _over_seeds(lambda s: A.random_grayscale(img, s, 0.2), 2000)
    same = (out == img).all(axis=(1, 2, 3))
    lo, hi = _rate_bounds(0.2, 2000)
    assert lo < 1 - same.mean() < hi
    gray = out[~same]
    np.testing.assert_allclose(gray, np.broadcast_to(np_gray(img)[..., None], gray.shape),
                               atol=1e-6)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


# ------------------------------------------------------------------------- colour jitter


def test_adjust_ops_match_torchvision_functional():
    img = _image(16, 12)
    x = tf.constant(img)
    for f in (0.0, 0.3, 1.0, 1.6):
        np.testing.assert_allclose(A.adjust_brightness(x, f), np_brightness(img, f), atol=1e-6)
        np.testing.assert_allclose(A.adjust_contrast(x, f), np_contrast(img, f), atol=1e-6)
        np.testing.assert_allclose(A.adjust_saturation(x, f), np_saturation(img, f), atol=1e-6)
    for h in (-0.5, -0.1, 0.0, 0.07, 0.5):
        np.testing.assert_allclose(A.adjust_hue(x, h), np_hue(img, h), atol=1e-5)


@pytest.mark.parametrize("op", range(4))
def test_color_jitter_single_op(op):
    img = _image(16, 12)
    strengths = [0.0] * 4
    strengths[op] = [0.4, 0.4, 0.8, 0.1][op]
    tol = 1e-5 if op == 3 else 1e-6
    for seed in _seeds(4, start=10 * op):
        out = A.color_jitter(img, seed, *strengths, p=1.0).numpy()
        factors, _ = A.color_jitter_params(seed, *strengths)
        want = NP_OPS[op](img, float(factors[op]))
        np.testing.assert_allclose(out, want, atol=tol)
        assert np.abs(out - img).max() > 1e-3  # the op did something


def test_color_jitter_order_and_composition():
    img = _image(16, 12)
    strengths = (0.4, 0.4, 0.2, 0.1)
    for seed in _seeds(6, start=100):
        out = A.color_jitter(img, seed, *strengths, p=1.0).numpy()
        factors, order = A.color_jitter_params(seed, *strengths)
        want = img.astype(np.float64)
        for i in order.numpy():
            want = NP_OPS[i](want, float(factors[i]))
        np.testing.assert_allclose(out, want, atol=1e-5)


def test_color_jitter_params_ranges_and_permutations():
    strengths = (1.2, 1.5, 0.3, 0.1)  # strengths above 1: the lower bound clamps to 0
    factors, orders = _over_seeds(lambda s: A.color_jitter_params(s, *strengths), 1000)
    lo = np.array([0.0, 0.0, 0.7, -0.1])
    hi = np.array([2.2, 2.5, 1.3, 0.1])
    assert (factors >= lo - 1e-6).all() and (factors <= hi + 1e-6).all()
    assert (factors.min(0) < lo + 0.02 * (hi - lo)).all()
    assert (factors.max(0) > hi - 0.02 * (hi - lo)).all()
    assert (np.sort(orders, 1) == np.arange(4)).all()
    assert len({tuple(o) for o in orders}) == 24
    lo_r, hi_r = _rate_bounds(0.25, 1000)
    for pos in range(4):
        freq = np.bincount(orders[:, pos], minlength=4) / 1000
        assert (lo_r < freq).all() and (freq < hi_r).all()


def test_color_jitter_identity_cases_and_rate():
    img = _image(16, 12)
    seed = tf.constant([5, 6])
    np.testing.assert_array_equal(A.color_jitter(img, seed, 0, 0, 0, 0, p=1.0), img)
    np.testing.assert_array_equal(A.color_jitter(img, seed, 0.4, 0.4, 0.2, 0.1, p=0.0), img)
    out = _over_seeds(lambda s: A.color_jitter(img, s, 0.4, 0.4, 0.2, 0.1, p=0.8), 1000)
    changed = (out != img).any(axis=(1, 2, 3))
    lo, hi = _rate_bounds(0.8, 1000)
    assert lo < changed.mean() < hi
    assert out.min() >= 0 and out.max() <= 1


def test_jitter_validates_strengths():
    with pytest.raises(ValueError):
        A.color_jitter(_image(), tf.constant([1, 2]), -0.1, 0, 0, 0)
    with pytest.raises(ValueError):
        A.color_jitter(_image(), tf.constant([1, 2]), 0, 0, 0, 0.6)
    with pytest.raises(ValueError):
        A.random_grayscale(_image(), tf.constant([1, 2]), 1.5)


# ------------------------------------------------------------------ blur, solarise, norm


def test_blur_matches_scipy_mirror():
    img = _image()
    sigma = 1.3
    out = A.gaussian_blur(img, tf.constant([1, 2]), 1.0, sigma=(sigma, sigma)).numpy()
    radius = math.ceil(3 * sigma)
    want = ndimage.gaussian_filter(img.astype(np.float64), (sigma, sigma, 0), mode="mirror",
                                   truncate=radius / sigma)
    np.testing.assert_allclose(out, want, atol=1e-5)
    # torch's "reflect" does not repeat the edge pixel; scipy's "reflect" does
    edge = ndimage.gaussian_filter(img.astype(np.float64), (sigma, sigma, 0), mode="reflect",
                                   truncate=radius / sigma)
    assert np.abs(out - edge).max() > 1e-2


def test_blur_properties():
    img = _image()
    seed = tf.constant([7, 8])
    tiny = A.gaussian_blur(img, seed, 1.0, sigma=(0.1, 0.1)).numpy()
    np.testing.assert_allclose(tiny, img, atol=1e-6)
    const = A.gaussian_blur(np.full((H, W, 3), 0.3, np.float32), seed, 1.0).numpy()
    np.testing.assert_allclose(const, 0.3, atol=1e-6)
    out = _over_seeds(lambda s: A.gaussian_blur(img, s, 1.0, sigma=(1.0, 2.0)), 8)
    centred = img - img.mean()
    energy = ((out - out.mean(axis=(1, 2, 3), keepdims=True)) ** 2).sum(axis=(1, 2, 3))
    assert (energy < 0.3 * (centred ** 2).sum()).all()
    assert len({o.tobytes() for o in out}) == 8  # sigma varies with the seed
    gated = _over_seeds(lambda s: A.gaussian_blur(img, s, 0.5), 400)
    lo, hi = _rate_bounds(0.5, 400)
    assert lo < (gated != img).any(axis=(1, 2, 3)).mean() < hi


def test_solarize_exact():
    img = _image(16, 12)
    img[0, 0] = [0.5, 0.3, np.nextafter(np.float32(0.5), np.float32(0))]
    seed = tf.constant([1, 1])
    np.testing.assert_array_equal(A.solarize(img, seed, 1.0), np.where(img >= 0.5, 1 - img, img))
    np.testing.assert_array_equal(A.solarize(img, seed, 1.0, threshold=0.3),
                                  np.where(img >= 0.3, 1 - img, img))
    out = _over_seeds(lambda s: A.solarize(img, s, 0.2), 1000)
    lo, hi = _rate_bounds(0.2, 1000)
    assert lo < (out != img).any(axis=(1, 2, 3)).mean() < hi


def test_normalize_exact():
    img = _image()
    want = (img - np.float32(A.IMAGENET_MEAN)) / np.float32(A.IMAGENET_STD)
    np.testing.assert_allclose(A.normalize(img, A.IMAGENET_MEAN, A.IMAGENET_STD), want,
                               rtol=0, atol=1e-6)
    dynamic = tf.function(lambda x: A.normalize(x, A.IMAGENET_MEAN, A.IMAGENET_STD),
                          input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    np.testing.assert_allclose(dynamic(img), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("op", [
    lambda x, s, p: A.horizontal_flip(x, s, p),
    lambda x, s, p: A.color_jitter(x, s, 0.4, 0.4, 0.2, 0.1, p=p),
    lambda x, s, p: A.random_grayscale(x, s, p),
    lambda x, s, p: A.gaussian_blur(x, s, p),
    lambda x, s, p: A.solarize(x, s, p),
], ids=["flip", "jitter", "grayscale", "blur", "solarize"])
def test_probability_zero_is_identity_and_one_always_applies(op):
    img = _image(24, 20)
    for seed in _seeds(5):
        np.testing.assert_array_equal(op(img, seed, 0.0), img)
        np.testing.assert_array_equal(op(img, seed, tf.constant(0.0)), img)
        assert (op(img, seed, 1.0).numpy() != img).any()
        assert (op(img, seed, tf.constant(1.0)).numpy() != img).any()


def test_gaussian_blurs_are_the_single_view_blurs():
    views = np.stack([_image(24, 20, seed=i) for i in range(12)])
    seeds = [tf.constant([i, 9], tf.int64) for i in range(12)]
    ps = [0.0, 1.0] + [0.5] * 10
    out = A.gaussian_blurs(views, seeds, ps).numpy()
    single = np.stack([A.gaussian_blur(v, s, p).numpy()
                       for v, s, p in zip(views, seeds, ps, strict=True)])
    np.testing.assert_allclose(out, single, atol=1e-6)
    np.testing.assert_array_equal(out[0], views[0])  # p 0: the identity kernel, exactly
    assert not np.allclose(out[1], views[1])
    blurred = [not np.allclose(o, v) for o, v in zip(out[2:], views[2:], strict=True)]
    assert 0 < sum(blurred) < 10  # gated


def test_gaussian_blurs_of_large_views_view_by_view():
    views = np.stack([_image(130, 130, seed=i) for i in range(2)])
    seeds = [tf.constant([i, 3], tf.int64) for i in range(2)]
    out = A.gaussian_blurs(views, seeds, [1.0, 0.0]).numpy()
    np.testing.assert_allclose(out[0], A.gaussian_blur(views[0], seeds[0], 1.0), atol=1e-6)
    np.testing.assert_array_equal(out[1], views[1])
