"""jax_ssl.data.randaugment against PIL, whose uint8 ops timm's RandAugment applies.

Each op at a fixed magnitude must equal, pixel for pixel, the PIL call timm makes, its
argument worked out by timm's level rules (transcribed below from timm 1.0's
auto_augment.py); the sampling is checked against timm's distributions over many seeds
inside ``tf.data.Dataset.map`` (graph mode, as in the pipeline), rates within about 5
standard deviations.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps
from scipy import stats
from test_data_augment import _rate_bounds

from jax_ssl.data import augment, recipes
from jax_ssl.data import randaugment as RA

FILL = (124, 116, 104)
RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def _seeds(n, start=0):
    return np.stack([np.arange(start, start + n), np.full(n, 4321)], 1).astype(np.int64)


def _over_seeds(fn, n, start=0):
    """``fn(seed)`` for n seeds, run by ``Dataset.map`` without AutoGraph, as the pipeline
    does; NumPy arrays stacked on axis 0."""
    fn = tf.autograph.experimental.do_not_convert(fn)
    ds = tf.data.Dataset.from_tensor_slices(_seeds(n, start)).map(fn).batch(n)
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(ds)))


def _levels(x):
    return np.round(np.asarray(x) * 255).astype(np.int64)


# ------------------------------------------------------------- timm's ops, through PIL


def pil_op(img, name, m, negate, interpolation="bicubic"):
    """timm ``AugmentOp(name, magnitude=m)`` on a PIL image, with its coin for the sign."""
    sign = -1 if negate else 1
    kw = dict(resample=RESAMPLE[interpolation], fillcolor=FILL)
    w, h = img.size
    base = name.replace("Increasing", "")
    increasing = name != base
    if name == "AutoContrast":
        return ImageOps.autocontrast(img)
    if name == "Equalize":
        return ImageOps.equalize(img)
    if name == "Invert":
        return ImageOps.invert(img)
    if name == "Rotate":
        return img.rotate(sign * m / 10 * 30, **kw)
    if base == "Posterize":
        bits = int(m / 10 * 4)
        bits = 4 - bits if increasing else bits
        # PIL >= 10 rejects 0 bits; older PIL (and TF's RandAugment) made the image black.
        return ImageOps.posterize(img, bits) if bits else Image.new("RGB", img.size)
    if base == "Solarize":
        threshold = min(256, int(m / 10 * 256))
        return ImageOps.solarize(img, 256 - threshold if increasing else threshold)
    if name == "SolarizeAdd":
        add = min(128, int(m / 10 * 110))
        return img.point([min(255, i + add) if i < 128 else i for i in range(256)] * 3)
    if base in ("Color", "Contrast", "Brightness", "Sharpness"):
        factor = max(0.1, 1 + sign * m / 10 * 0.9) if increasing else m / 10 * 1.8 + 0.1
        return getattr(ImageEnhance, base)(img).enhance(factor)
    matrix = {"ShearX": (1, sign * m / 10 * 0.3, 0, 0, 1, 0),
              "ShearY": (1, 0, 0, sign * m / 10 * 0.3, 1, 0),
              "TranslateXRel": (1, 0, sign * m / 10 * 0.45 * w, 0, 1, 0),
              "TranslateYRel": (1, 0, 0, 0, 1, sign * m / 10 * 0.45 * h)}[name]
    return img.transform(img.size, Image.Transform.AFFINE, matrix, **kw)


def _test_images():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (23, 30, 3))
    # Flat areas (where a cubic's rounding would show), ramps, and saturated corners.
    yy, xx = np.mgrid[0:26, 0:21]
    structured = np.stack([np.where(xx < 10, 200, 3 * xx), (9 * yy) % 256,
                           np.where((xx + yy) % 7 < 3, 255, 0)], -1)
    few_values = rng.choice([0, 40, 41, 255], (9, 12, 3))  # equalize's small steps
    return [x.astype(np.uint8) for x in (noise, structured, few_values)]


ALL_OPS = sorted(set(RA.RAND_INCREASING_TRANSFORMS) | set(RA.RAND_TRANSFORMS))
SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "ColorIncreasing",
          "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"}


@pytest.mark.parametrize("name", ALL_OPS)
def test_op_equals_pil(name):
    """Every op at several magnitudes (both signs where timm draws one) is PIL's output."""
    for img in _test_images():
        for m in (0.0, 3.3, 9.0, 9.73, 10.0):
            for negate in ((False, True) if name in SIGNED else (False,)):
                want = np.asarray(pil_op(Image.fromarray(img), name, m, negate))
                got = RA.apply_op(img, name, m, negate)
                assert got.dtype == tf.float32 and got.shape == img.shape
                np.testing.assert_array_equal(_levels(got), want,
                                              err_msg=f"{name} m={m} negate={negate}")


@pytest.mark.parametrize("name", ["Rotate", "ShearX", "TranslateYRel"])
def test_affine_ops_equal_pil_bilinear_and_fill(name):
    img = _test_images()[0]
    fill = (1, 2, 3)
    for m, negate in ((9.0, False), (6.2, True)):
        want = np.asarray(pil_op(Image.fromarray(img), name, m, negate, "bilinear"))
        got = RA.apply_op(img, name, m, negate, interpolation="bilinear")
        np.testing.assert_array_equal(_levels(got), want)
    # Uncovered corners take the fill colour.
    got = _levels(RA.apply_op(img, name, 10.0, False, fill=fill))
    corner = got[-1, -1] if name != "Rotate" else got[0, 0]
    assert tuple(corner) == fill


def test_ops_on_edge_cases_equal_pil():
    """Constant channels (autocontrast and equalize keep them), images of 1 and 2 pixels
    across (sharpness has no interior), posterize's 0 bits."""
    rng = np.random.default_rng(1)
    cases = [np.full((5, 7, 3), 77), rng.integers(0, 256, (1, 6, 3)),
             rng.integers(0, 256, (2, 2, 3))]
    const_channel = rng.integers(0, 256, (8, 8, 3))
    const_channel[..., 1] = 9
    cases.append(const_channel)
    for img in (c.astype(np.uint8) for c in cases):
        for name in ("AutoContrast", "Equalize", "SharpnessIncreasing", "Rotate", "ShearY"):
            want = np.asarray(pil_op(Image.fromarray(img), name, 8.0, False))
            np.testing.assert_array_equal(_levels(RA.apply_op(img, name, 8.0)), want,
                                          err_msg=f"{name} on {img.shape}")
    black = RA.apply_op(cases[1], "PosterizeIncreasing", 10.0)
    assert not black.numpy().any()


def test_float_input_is_rounded_to_uint8_levels():
    img = _test_images()[0]
    jittered = img / 255.0 + np.random.default_rng(2).uniform(-0.4, 0.4, img.shape) / 255
    for name in ("Rotate", "ContrastIncreasing"):
        np.testing.assert_array_equal(
            RA.apply_op(jittered.astype(np.float32), name, 7.0).numpy(),
            RA.apply_op(img, name, 7.0).numpy())


def test_ops_trace_without_static_shapes():
    img = _test_images()[1]
    spec = tf.TensorSpec([None, None, 3], tf.uint8)
    for name in ("Rotate", "ShearX", "TranslateYRel", "Equalize", "SharpnessIncreasing"):
        traced = tf.function(lambda x, name=name: RA.apply_op(x, name, 9.0), input_signature=[spec])
        np.testing.assert_array_equal(_levels(traced(img)), _levels(RA.apply_op(img, name, 9.0)))
    erase = tf.function(lambda x: RA.random_erasing(x, tf.constant([1, 2]), probability=1.0),
                        input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    zeros = tf.zeros([12, 17, 3])
    np.testing.assert_array_equal(erase(zeros).numpy(), RA.random_erasing(
        zeros, tf.constant([1, 2]), probability=1.0).numpy())


# ----------------------------------------------------------------- RandAugment sampling


def test_rand_augment_params_follow_timm_sampling():
    """'rand-m9-mstd0.5-inc1': 2 ops uniform with replacement, each applied with
    probability 0.5 at magnitude N(9, 0.5) clipped to [0, 10], sign flipped half the time."""
    n = 4000
    p = _over_seeds(lambda s: RA.rand_augment_params(s), n)
    assert p["op"].shape == (n, 2)
    assert stats.chisquare(np.bincount(p["op"].ravel(), minlength=15)).pvalue > 1e-4
    lo, hi = _rate_bounds(1 / 15, n)  # replace=True: both layers can draw the same op
    assert lo <= (p["op"][:, 0] == p["op"][:, 1]).mean() <= hi
    for key in ("applied", "negate"):
        lo, hi = _rate_bounds(0.5, 2 * n)
        assert lo <= p[key].mean() <= hi, key
    m = p["magnitude"].ravel()
    assert m.min() >= 0.0 and m.max() <= 10.0
    lo, hi = _rate_bounds(stats.norm.sf(2.0), 2 * n)  # N(9, 0.5) above 10, clipped to 10
    assert lo <= (m == 10.0).mean() <= hi
    below = stats.truncnorm(-18.0, 2.0, loc=9.0, scale=0.5)
    assert stats.kstest(m[m < 10.0], below.cdf).pvalue > 1e-4
    # layers draw independently
    assert abs(np.corrcoef(p["magnitude"].T)[0, 1]) < 5 / math.sqrt(n)


def test_rand_augment_params_magnitude_options():
    fixed = _over_seeds(lambda s: RA.rand_augment_params(s, magnitude_std=0.0), 50)
    assert (fixed["magnitude"] == 9.0).all()
    uniform = _over_seeds(lambda s: RA.rand_augment_params(s, magnitude_std=math.inf), 2000)
    assert stats.kstest(uniform["magnitude"].ravel(), stats.uniform(0, 9).cdf).pvalue > 1e-4
    layers = _over_seeds(lambda s: RA.rand_augment_params(s, num_layers=3, prob=0.2), 2000)
    lo, hi = _rate_bounds(0.2, 6000)
    assert layers["op"].shape == (2000, 3) and lo <= layers["applied"].mean() <= hi


@pytest.mark.parametrize("increasing", [True, False])
def test_rand_augment_applies_its_params_in_order(increasing):
    """``rand_augment`` in Dataset.map is the ops its params name, applied one by one."""
    img = _test_images()[0]
    names = RA.RAND_INCREASING_TRANSFORMS if increasing else RA.RAND_TRANSFORMS
    n = 24
    got = _over_seeds(lambda s: RA.rand_augment(img, s, increasing=increasing), n)
    layers_used = 0
    for seed, out in zip(_seeds(n), got, strict=True):
        p = {k: v.numpy() for k, v in RA.rand_augment_params(seed).items()}
        want = img
        for op, applied, m, negate in zip(p["op"], p["applied"], p["magnitude"], p["negate"],
                                          strict=True):
            if applied:
                want = RA.apply_op(want, names[op], m, negate)
                layers_used += 1
        np.testing.assert_array_equal(_levels(out), _levels(want) if want is not img else img)
    assert 10 <= layers_used <= 38  # about half of the 48 layers


def test_rand_augment_output_and_determinism():
    img = _test_images()[0]
    ds = tf.data.Dataset.from_tensor_slices(_seeds(64)).map(
        tf.autograph.experimental.do_not_convert(lambda s: RA.rand_augment(img, s))).batch(64)
    out, again = (next(iter(ds)).numpy() for _ in range(2))
    assert out.shape == (64, *img.shape) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out * 255, np.round(out * 255))  # uint8 levels
    np.testing.assert_array_equal(out, again)
    # Both coins say no a quarter of the time; otherwise the seeds give different images.
    unchanged = np.all(_levels(out) == img, axis=(1, 2, 3))
    assert unchanged.mean() < 0.5
    assert len({o.tobytes() for o in out[~unchanged]}) >= 0.8 * (~unchanged).sum()
    # uint8 and [0, 1] float input agree, eagerly as in the graph.
    seed = tf.constant([5, 6], tf.int64)
    np.testing.assert_array_equal(RA.rand_augment(img, seed).numpy(),
                                  RA.rand_augment(img.astype(np.float32) / 255, seed).numpy())


# --------------------------------------------------------------------- random erasing


def np_erasing_box(rng, height, width, scale=(0.02, 1 / 3), ratio=(0.3, 1 / 0.3)):
    """timm RandomErasing._erase's loop for one box, verbatim in NumPy: (h, w) or None."""
    for _ in range(10):
        target_area = rng.uniform(*scale) * height * width
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        h = int(round(math.sqrt(target_area * aspect)))
        w = int(round(math.sqrt(target_area / aspect)))
        if w < width and h < height:
            return h, w
    return None


def _erased_boxes(out):
    """(top, left, h, w) of the rectangle each zero image got, or None; asserts it is one
    filled rectangle."""
    boxes = []
    for x in out:
        changed = np.any(x != 0, axis=-1)
        if not changed.any():
            boxes.append(None)
            continue
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert changed.sum() == h * w
        boxes.append((rows[0], cols[0], h, w))
    return boxes


def test_random_erasing_rate_and_boxes_follow_timm():
    height, width, n = 20, 26, 3000
    zeros = tf.zeros([height, width, 3])
    out = _over_seeds(lambda s: RA.random_erasing(zeros, s, probability=0.25), n)
    assert out.shape == (n, height, width, 3) and out.dtype == np.float32
    boxes = [b for b in _erased_boxes(out) if b is not None]
    rng = np.random.default_rng(0)
    sim = [np_erasing_box(rng, height, width) for _ in range(20000)]
    found = np.mean([b is not None for b in sim])
    lo, hi = _rate_bounds(0.25 * found, n)
    assert lo <= len(boxes) / n <= hi
    # The fitted boxes' sizes follow timm's loop (area, then aspect, then h < H, w < W).
    top, left, h, w = np.array(boxes).T
    theirs = np.array([b for b in sim if b is not None])
    assert (h < height).all() and (w < width).all()
    assert stats.ks_2samp(h * w, theirs[:, 0] * theirs[:, 1]).pvalue > 1e-4
    assert stats.ks_2samp(h / w, theirs[:, 0] / theirs[:, 1]).pvalue > 1e-4
    # randint(0, H - h) includes both ends: boxes touch each edge about equally often.
    for first, last in ((top == 0, top + h == height), (left == 0, left + w == width)):
        assert first.sum() > 20 and 0.5 < last.sum() / first.sum() < 2.0


def test_random_erasing_fills():
    image = tf.fill([16, 24, 3], 7.0)
    pixel = _over_seeds(lambda s: RA.random_erasing(image, s, probability=1.0), 200)
    erased = pixel != 7.0
    assert erased.any(axis=(1, 2, 3)).mean() > 0.95
    noise = pixel[erased]  # per-pixel standard normal noise
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1.0) < 0.05
    assert (np.all(erased, axis=-1) == np.any(erased, axis=-1)).all()  # all channels
    for mode, check in (("rand", lambda box: (box == box[:1]).all()),
                        ("const", lambda box: (box == 0).all())):
        out = _over_seeds(lambda s, mode=mode: RA.random_erasing(image, s, probability=1.0,
                                                                  mode=mode), 20)
        for x in out:
            box = x[np.any(x != 7.0, axis=-1)]
            assert check(box), mode
    untouched = RA.random_erasing(image, tf.constant([1, 2]), probability=0.0)
    np.testing.assert_array_equal(untouched.numpy(), image.numpy())
    # count=3: one to three boxes, each a third of the area
    many = _over_seeds(lambda s: RA.random_erasing(tf.zeros([40, 40, 3]), s, probability=1.0,
                                                   count=3), 300)
    fraction = np.any(many != 0, axis=-1).mean(axis=(1, 2))
    assert fraction.max() <= 3 * (1 / 9 + 0.03) and 0.05 < fraction.mean() < 0.2


# ------------------------------------------------------------------------------ recipe


def test_finetune_recipe_composes_the_timm_transform():
    image = tf.constant(np.random.default_rng(3).integers(0, 256, (50, 60, 3), np.uint8))
    recipe = recipes.make_recipe("finetune", size=32)
    out = _over_seeds(lambda s: recipe(image, s), 8)["image"]
    assert out.shape == (8, 32, 32, 3) and out.dtype == np.float32
    for seed, got in zip(_seeds(8), out, strict=True):
        crop, flip, aug, erase = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        x = augment.random_resized_crop(image, crop, 32, method="bicubic")
        x = RA.rand_augment(augment.horizontal_flip(x, flip), aug, fill=FILL)
        x = RA.random_erasing(augment.normalize(x), erase, probability=0.25)
        np.testing.assert_allclose(got, x.numpy(), atol=1e-6)
    plain = recipes.make_recipe("finetune", size=32, auto_augment=False, reprob=0.0)
    seed = tf.constant([7, 8], tf.int64)
    crop, flip, _, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    want = augment.normalize(augment.horizontal_flip(
        augment.random_resized_crop(image, crop, 32, method="bicubic"), flip))
    np.testing.assert_array_equal(plain(image, seed)["image"].numpy(), want.numpy())


# ------------------------------------------------------------------ against timm itself


@pytest.mark.slow
def test_ops_equal_timm_augment_op(monkeypatch):
    """timm's own AugmentOp (its op lists, level rules and PIL calls), when installed."""
    auto_augment = pytest.importorskip("timm.data.auto_augment")
    hparams = dict(translate_const=100, img_mean=FILL, interpolation=RESAMPLE["bicubic"])
    for spec, names in (("rand-m9-mstd0.5-inc1", RA.RAND_INCREASING_TRANSFORMS),
                        ("rand-m9-mstd0.5", RA.RAND_TRANSFORMS)):
        ra = auto_augment.rand_augment_transform(spec, dict(hparams))
        assert tuple(op.name for op in ra.ops) == names and ra.choice_weights is None
        assert (ra.num_layers, ra.ops[0].prob, ra.ops[0].magnitude) == (2, 0.5, 9)
    img = _test_images()[0]
    for name in ALL_OPS:
        for m in (2.5, 9.0, 9.9):
            for negate in (False, True):
                op = auto_augment.AugmentOp(name, prob=1.0, magnitude=m, hparams=hparams)
                # timm negates when random() > 0.5
                monkeypatch.setattr(auto_augment.random, "random", lambda n=negate: 0.9 * n)
                want = np.asarray(op(Image.fromarray(img)))
                np.testing.assert_array_equal(_levels(RA.apply_op(img, name, m, negate)), want,
                                              err_msg=f"{name} m={m} negate={negate}")
