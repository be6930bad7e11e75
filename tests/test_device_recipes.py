"""The device recipes: the tf.data recipes' pixels for the same draws, their distributions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from jax_ssl import train
from jax_ssl.data import augment, device_recipes, pipeline, recipes, resample, sources


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 28, 28, 3), dtype=np.uint8)


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_crop_and_resize_equals_the_tf_resampler(method, images):
    boxes = np.array([[0, 0, 28, 28], [3, 5, 11, 20], [10, 2, 18, 9], [20, 20, 8, 8]], np.int32)
    want = np.clip(resample.crop_and_resize(images[0], boxes, (24, 24), method, 1 / 255), 0, 1)
    for box, expected in zip(boxes, want, strict=True):
        got = device_recipes.crop_resize_flip(images[0], jnp.asarray(box), 24, method, False)
        np.testing.assert_allclose(got, expected, atol=2e-5)
        flipped = device_recipes.crop_resize_flip(images[0], jnp.asarray(box), 24, method, True)
        np.testing.assert_allclose(flipped, expected[:, ::-1], atol=2e-5)


@pytest.mark.parametrize("op,factor", [("brightness", 1.3), ("contrast", 0.6),
                                       ("saturation", 1.7), ("hue", 0.23), ("hue", -0.4)])
def test_jitter_ops_equal_the_tf_ops(op, factor, images):
    x = images[:2].astype(np.float32) / 255
    x[0, :4] = x[0, :4, :, :1]  # grey pixels: hue has no effect there
    got = jax.vmap(getattr(device_recipes, f"adjust_{op}"), (0, None))(jnp.asarray(x), factor)
    want = np.stack([getattr(augment, f"adjust_{op}")(tf.constant(v), factor) for v in x])
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_greyscale_and_blur_against_numpy(images):
    x = images[0].astype(np.float32) / 255
    np.testing.assert_allclose(device_recipes.grey(x), x @ np.array([0.299, 0.587, 0.114]),
                               atol=1e-6)
    sigma, radius = 1.3, 6
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    rows = sum(k * padded[t:t + 28] for t, k in enumerate(kernel))
    want = sum(k * rows[:, t:t + 28] for t, k in enumerate(kernel))
    np.testing.assert_allclose(device_recipes.gaussian_blur(x, sigma, radius), want, atol=1e-5)


@pytest.mark.parametrize("scale,size", [((0.08, 1.0), (28, 28)), ((0.8, 1.0), (20, 32))])
def test_crop_boxes_have_torchvisions_distribution(scale, size):
    """Area fraction, aspect ratio and offsets of 3000 boxes against the tf draws."""
    ours = np.asarray(device_recipes.crop_boxes(jax.random.PRNGKey(0), *size, 3000, scale))
    theirs = augment.resized_crop_boxes(*size, tf.constant([1, 2], tf.int64), 3000,
                                        scale).numpy()
    for stat in (lambda b: b[:, 2] * b[:, 3], lambda b: b[:, 3] / b[:, 2],
                 lambda b: b[:, 0], lambda b: b[:, 1]):
        assert scipy.stats.ks_2samp(stat(ours), stat(theirs)).pvalue > 1e-3
    assert (ours[:, :2] >= 0).all() and (ours[:, :2] + ours[:, 2:] <= size).all()


def test_jitter_draws_factor_ranges_and_uniform_orders():
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    factors, orders = jax.vmap(lambda k: device_recipes.jitter_params(k, 0.4, 0.4, 0.2, 0.1))(
        keys)
    lo, hi = np.array([0.6, 0.6, 0.8, -0.1]), np.array([1.4, 1.4, 1.2, 0.1])
    for i in range(4):
        assert scipy.stats.kstest((np.asarray(factors[:, i]) - lo[i]) / (hi[i] - lo[i]),
                                  "uniform").pvalue > 1e-3
    counts = np.unique([tuple(o) for o in np.asarray(orders)], axis=0, return_counts=True)[1]
    assert len(counts) == 24 and scipy.stats.chisquare(counts).pvalue > 1e-3


def test_simclr_views_have_the_tf_recipes_pixel_statistics(images):
    """Over 400 views of the same images, the per-view mean, spread and colourfulness
    of the pixels (what crops, jitter and greyscale move) follow the tf recipe's
    distributions."""
    kwargs = dict(size=24, scale=(0.2, 1.0), strength=0.5, blur=0.5)
    device = jax.jit(jax.vmap(device_recipes.make_device_recipe("simclr", **kwargs)))
    keys = jax.random.split(jax.random.PRNGKey(2), 200)
    ours = np.asarray(device(images[np.arange(200) % 6], keys)["views"]).reshape(400, -1)
    recipe = tf.function(recipes.make_recipe("simclr", **kwargs))
    theirs = np.concatenate([recipe(tf.constant(images[i % 6]),
                                    tf.constant([i, 7], tf.int64))["views"].numpy()
                             for i in range(200)]).reshape(400, -1)
    def colourfulness(v):  # what jitter's saturation and the greyscale move
        return v.reshape(len(v), -1, 3).std(-1).mean(1)

    for stat in (lambda v: v.mean(1), lambda v: v.std(1), colourfulness):
        assert scipy.stats.ks_2samp(stat(ours), stat(theirs)).pvalue > 1e-3


def test_make_device_recipe_checks_like_the_tf_recipes():
    assert device_recipes.make_device_recipe("multicrop") is None  # tf.data only
    with pytest.raises(ValueError, match="has no argument"):
        device_recipes.make_device_recipe("simclr", sise=28)
    with pytest.raises(ValueError, match="unknown augmentation recipe"):
        device_recipes.make_device_recipe("simclrr")
    for name, fn in device_recipes.DEVICE_RECIPES.items():  # the same arguments
        assert fn.__code__.co_varnames[2:fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount] \
            == recipes.RECIPES[name].__code__.co_varnames[
                2:recipes.RECIPES[name].__code__.co_argcount
                + recipes.RECIPES[name].__code__.co_kwonlyargcount]


def test_views_depend_only_on_the_examples_position(images):
    """What makes the views the same on 1 or 8 devices and after resuming: an example's
    views are a function of its position in the stream, not of its batch."""
    augment = jax.jit(train.augment_on_device(
        device_recipes.make_device_recipe("mae", size=28), 0))
    batch = {"image": images[:4], "position": np.array([7, 8, 9, 10], np.int32),
             "label": np.arange(4)}
    whole = augment(batch)
    half = augment(jax.tree.map(lambda x: x[2:], batch))
    np.testing.assert_array_equal(half["image"], whole["image"][2:])
    np.testing.assert_array_equal(half["label"], [2, 3])
    assert not np.allclose(whole["image"][0], whole["image"][1])


def test_raw_batches_carry_images_and_stream_positions():
    source = sources.get_source("digits", "train")
    first = next(iter(pipeline.train_batches(source, None, global_batch_size=8, seed=0,
                                             start_step=3).as_numpy_iterator()))
    assert first["image"].dtype == np.uint8 and first["image"].shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(first["position"], np.arange(24, 32))
    processed = next(iter(pipeline.train_batches(
        source, recipes.make_recipe("eval", size=32), global_batch_size=8, seed=0,
        start_step=3).as_numpy_iterator()))
    np.testing.assert_array_equal(first["label"], processed["label"])  # the same examples
