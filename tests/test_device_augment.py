"""jax_ssl.data.device_augment against the tf.data recipes it stands in for.

Given the same parameters the device ops must give the tf ops' pixels; the parameters
they draw must follow the tf recipe's distributions (two-sample KS tests against
augment's own draws, binomial bounds of 5 standard deviations, fixed seeds); and the
recipes must give the tf recipes' outputs, batched.
"""
import inspect
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from jax_ssl import train
from jax_ssl.data import augment, device_augment, pipeline, recipes, resample, sources

P_MIN = 1e-3  # KS / chi-square p-values below this fail


def _float_image(h, w, seed=0):
    """[h, w, 3] in [0, 1] with exact 0s, 1s, 0.5s and grey pixels among the noise, the
    edge cases of the clips, the solarise threshold and the hue's grey/tied channels."""
    rng = np.random.default_rng(seed)
    x = rng.random((h, w, 3)).astype(np.float32)
    x[0, :4] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 1]]
    x[1, :3] = [[0.3, 0.3, 0.3], [0.7, 0.7, 0.2], [0.5, 0.9, 0.9]]
    return x


def _fashion_like(n, h=28, w=28, seed=0):
    """uint8 [n, h, w, 3]: a textured, tinted ellipse on black, Fashion-MNIST-like but
    coloured so that hue and saturation jitter act on it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    images = np.zeros((n, h, w, 3), np.float32)
    for image in images:
        cy, cx = rng.uniform(0.35, 0.65, 2) * (h, w)
        ry, rx = rng.uniform(0.2, 0.45, 2) * (h, w)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        texture = rng.uniform(0.5, 1.0, (h, w))
        image[inside] = texture[inside, None] * rng.uniform(80, 255, 3)
    return images.astype(np.uint8)


# ------------------------------------------------------------ ops, given parameters


BOXES = np.array([[0, 0, 28, 32], [3, 5, 10, 20], [10, 2, 18, 7], [1, 1, 27, 31],
                  [27, 31, 1, 1], [4, 0, 20, 15]], np.int32)


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [16, 40])  # shrinking (antialiased) and enlarging
def test_crop_and_resize_matches_resample(method, size):
    image = np.random.default_rng(1).integers(0, 256, (28, 32, 3), np.uint8)
    expected = np.clip(resample.crop_and_resize(image, BOXES, (size, size), method,
                                                1 / 255).numpy(), 0, 1)
    flips = np.array([False, True] * 3)
    rows, columns = device_augment.resize_matrices(jnp.asarray(BOXES), jnp.asarray(flips),
                                                   (28, 32), size, method)
    got = np.asarray(device_augment.crop_and_resize(image[None], rows[None], columns[None])[0])
    expected[flips] = expected[flips][:, :, ::-1]  # augment.horizontal_flip reverses W
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("op, factors", [
    ("adjust_brightness", [0.0, 0.3, 1.0, 1.8]),
    ("adjust_contrast", [0.0, 0.3, 1.0, 1.8]),
    ("adjust_saturation", [0.0, 0.3, 1.0, 1.8]),
    ("adjust_hue", [-0.5, -0.2, 0.0, 0.13, 0.5]),
])
def test_jitter_ops_match_augment(op, factors):
    x = _float_image(20, 24)
    for factor in factors:
        expected = getattr(augment, op)(x, factor).numpy()
        np.testing.assert_allclose(getattr(device_augment, op)(x, factor), expected,
                                   atol=1e-5, err_msg=f"{op}({factor})")


@pytest.mark.parametrize("strengths", [(0.8, 0.8, 0.8, 0.2), (0.4, 0.4, 0.2, 0.0)])
def test_color_jitter_matches_augment_for_its_factors_and_order(strengths):
    """augment.color_jitter (p=1) draws its factors and order with color_jitter_params
    from the same seed: given those, the device jitter gives its pixels; every one of the
    24 orders occurs among the seeds, in the two strengths together."""
    x = _float_image(12, 12)
    hue = strengths[3] > 0
    jitter = jax.jit(lambda f, o, g: device_augment.color_jitter(x, f, o, g, hue=hue))
    for i in range(40):
        seed = tf.constant([i, 5], tf.int64)
        factors, order = (t.numpy() for t in augment.color_jitter_params(seed, *strengths))
        expected = augment.color_jitter(x, seed, *strengths, p=1.0).numpy()
        np.testing.assert_allclose(jitter(factors, order, True), expected, atol=1e-5,
                                   err_msg=f"order {order}")
        np.testing.assert_array_equal(jitter(factors, order, False), x)


def test_greyscale_solarize_normalize_match_augment():
    x = _float_image(10, 12)
    np.testing.assert_allclose(device_augment.random_greyscale(x, jnp.asarray(True)),
                               augment.random_grayscale(x, tf.constant([0, 0]), 1.0).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(device_augment.solarize(x, jnp.asarray(True)),
                               augment.solarize(x, tf.constant([0, 0]), 1.0).numpy(), atol=1e-7)
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.1)
    np.testing.assert_allclose(device_augment.normalize(x, mean, std),
                               augment.normalize(x, mean, std).numpy(), rtol=1e-6, atol=1e-6)
    for op in (device_augment.random_greyscale, device_augment.solarize):
        np.testing.assert_array_equal(op(x, jnp.asarray(False)), x)


@pytest.mark.parametrize("sigma", [0.5, 1.3, 2.0])  # 2.0: the recipes' radius, 6
def test_blur_matches_augment_for_a_given_sigma(sigma):
    """augment's blur with the sigma range (s, s) draws s, with a radius of ceil(3s)."""
    x = _float_image(20, 20)
    expected = augment.gaussian_blur(x, tf.constant([1, 2]), 1.0, sigma=(sigma, sigma)).numpy()
    radius = device_augment.blur_radius(sigma)
    matrix = device_augment.blur_matrix(sigma, jnp.asarray(True), 20, radius)
    np.testing.assert_allclose(device_augment.gaussian_blur(x, matrix), expected, atol=1e-5)
    identity = device_augment.blur_matrix(sigma, jnp.asarray(False), 20, radius)
    np.testing.assert_array_equal(device_augment.gaussian_blur(x, identity), x)


# ------------------------------------------------------------ parameter distributions

NUM_IMAGES = 2000  # x 2 views: 4000 draws of every parameter


@pytest.fixture(scope="module")
def byol_draws():
    """Parameters of the byol recipe's views (jitter (0.4, 0.4, 0.2, 0.1), blur 1.0/0.1,
    solarise 0/0.2) for 2000 images of 28 x 32, as NumPy [2000, 2, ...]."""
    sample = jax.jit(lambda key: device_augment.sample_views(
        key, NUM_IMAGES, (1.0, 0.1), (0.0, 0.2), height=28, width=32, scale=(0.08, 1.0),
        jitter=(0.4, 0.4, 0.2, 0.1), jitter_p=0.8, grey_p=0.2))
    return jax.tree.map(np.asarray, sample(jax.random.key(0)))


def _box_statistics(boxes, height, width):
    top, left, h, w = np.asarray(boxes).reshape(-1, 4).T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    return {"area": h * w / (height * width), "log aspect": np.log(w / h), "top": top,
            "left": left, "bottom room": height - h - top}


@pytest.mark.parametrize("height, width, scale", [
    (28, 32, (0.08, 1.0)),
    (12, 64, (0.2, 1.0)),  # wider than 4:3 and often no candidate fits: the fallback
])
def test_crop_boxes_follow_augments_distribution(height, width, scale):
    num = 4000
    uniforms = jax.random.uniform(jax.random.key(1), (num, device_augment._BOX_UNIFORMS))
    ours = jax.jit(jax.vmap(lambda u: device_augment.crop_box(u, height, width, scale)))(
        uniforms)
    theirs = augment.resized_crop_boxes(height, width, tf.constant([7, 8]), num, scale).numpy()
    ours, theirs = _box_statistics(ours, height, width), _box_statistics(theirs, height, width)
    for name in ours:
        p = stats.ks_2samp(ours[name], theirs[name]).pvalue
        assert p > P_MIN, f"{name}: KS p = {p:.2g}"


def test_the_recipe_draws_boxes_per_view(byol_draws):
    """The boxes sample_views draws for the recipe are the crop_box distribution, and the
    two views of an image are drawn independently."""
    theirs = augment.resized_crop_boxes(28, 32, tf.constant([7, 8]), 2 * NUM_IMAGES).numpy()
    ours = _box_statistics(byol_draws.box, 28, 32)
    for name, values in _box_statistics(theirs, 28, 32).items():
        assert stats.ks_2samp(ours[name], values).pvalue > P_MIN, name
    area = ours["area"].reshape(NUM_IMAGES, 2)
    assert abs(stats.pearsonr(area[:, 0], area[:, 1]).statistic) < 5 / math.sqrt(NUM_IMAGES)


def _assert_rate(gates, p):
    n = gates.size
    bound = 5 * math.sqrt(p * (1 - p) / n) if 0 < p < 1 else 0
    assert abs(gates.mean() - p) <= bound, f"rate {gates.mean():.4f}, expected {p}"


def test_gates_fire_at_the_recipes_rates(byol_draws):
    _assert_rate(byol_draws.flip, 0.5)
    _assert_rate(byol_draws.jitter, 0.8)
    _assert_rate(byol_draws.grey, 0.2)
    _assert_rate(byol_draws.blur[:, 0], 1.0)
    _assert_rate(byol_draws.blur[:, 1], 0.1)
    _assert_rate(byol_draws.solarize[:, 0], 0.0)
    _assert_rate(byol_draws.solarize[:, 1], 0.2)
    # Independent gates: the two views' flips agree half of the time.
    _assert_rate(byol_draws.flip[:, 0] == byol_draws.flip[:, 1], 0.5)


def test_jitter_factors_and_sigma_are_uniform_over_torchvisions_ranges(byol_draws):
    factors = byol_draws.factors.reshape(-1, 4)
    for i, (lo, hi) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
        p = stats.kstest(factors[:, i], stats.uniform(lo, hi - lo).cdf).pvalue
        assert p > P_MIN, f"factor {i}: KS p = {p:.2g}"
    p = stats.kstest(byol_draws.sigma.ravel(), stats.uniform(0.1, 1.9).cdf).pvalue
    assert p > P_MIN, f"sigma: KS p = {p:.2g}"


def test_jitter_orders_are_uniform_permutations(byol_draws):
    orders = byol_draws.order.reshape(-1, 4)
    np.testing.assert_array_equal(np.sort(orders, axis=1), np.tile(np.arange(4), (len(orders), 1)))
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([index[tuple(o)] for o in orders], minlength=24)
    assert stats.chisquare(counts).pvalue > P_MIN, counts


# ------------------------------------------------------------ recipes end to end


BATCH = 512


@pytest.fixture(scope="module")
def images():
    return _fashion_like(BATCH, seed=3)


def _sizes(name, size):
    """The recipe's size arguments: multicrop gets two local views of 12 pixels (fewer
    than 8 compile in less time)."""
    if name == "multicrop":
        return dict(global_size=size, local_size=12, num_local=2)
    return dict(size=size)


@pytest.fixture(scope="module")
def jitted():
    """``jitted(name, size)``: the jitted device recipe, compiled once per module."""
    cache = {}

    def get(name, size):
        if (name, size) not in cache:
            recipe = device_augment.make_device_recipe(name, **_sizes(name, size))
            cache[name, size] = jax.jit(recipe)
        return cache[name, size]

    return get


# byol runs the code of simclr (two views) and of dino's multicrop (bicubic, solarise).
@pytest.mark.parametrize("name, size, shapes", [
    ("simclr", 28, {"views": (BATCH, 2, 28, 28, 3)}),
    ("mae", 32, {"image": (BATCH, 32, 32, 3)}),
    ("multicrop", 28, {"global_views": (BATCH, 2, 28, 28, 3),
                       "local_views": (BATCH, 2, 12, 12, 3)}),
])
def test_recipe_shapes_dtype_and_keys(jitted, images, name, size, shapes):
    """The tf recipe's outputs with a batch axis; a key gives the same views again,
    another key other ones (but by chance, as two crops of the black background)."""
    recipe = jitted(name, size)
    out = recipe(images, jax.random.key(0))
    assert {k: v.shape for k, v in out.items()} == shapes
    tf_out = recipes.make_recipe(name, **_sizes(name, size))(images[0], tf.constant([0, 0]))
    assert {k: (BATCH, *v.shape) for k, v in tf_out.items()} == shapes
    assert all(v.dtype == jnp.float32 for v in out.values())
    again = recipe(images, jax.random.key(0))
    other = recipe(images, jax.random.key(1))
    for k in out:
        np.testing.assert_array_equal(out[k], again[k])
        assert np.isclose(out[k], other[k]).all(axis=(-3, -2, -1)).mean() < 0.01


def test_recipe_vmaps_over_groups_of_images(jitted, images):
    recipe = jitted("simclr", 28)
    keys = jax.random.split(jax.random.key(2), 2)
    groups = np.stack([images, images[::-1]])
    batched = jax.jit(jax.vmap(recipe))(groups, keys)["views"]
    for g in range(2):
        np.testing.assert_allclose(batched[g], recipe(groups[g], keys[g])["views"], atol=1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("mae", dict(size=28)),
    ("multicrop", dict(global_size=16, local_size=8, num_local=1, blur=False))])
def test_per_image_keys_make_views_independent_of_the_rest_of_the_batch(images, name, kwargs):
    """With a key per image, an image's views are the same in any batch (as on any number
    of devices); one key stands for its split into one per image; a raw uint32 key works
    as its typed form."""
    recipe = jax.jit(device_augment.make_device_recipe(name, **kwargs))
    keys = jax.random.split(jax.random.key(4), 6)
    whole = recipe(images[:6], keys)
    for field, views in recipe(images[2:4], keys[2:4]).items():
        # equal up to float32 rounding (the suite compiles without LLVM's optimisations,
        # whose vectorisation differs with the batch size: a few ulps)
        np.testing.assert_allclose(views, whole[field][2:4], rtol=1e-5, atol=1e-5)
    for key in (jax.random.key(4), jax.random.key_data(keys)):
        np.testing.assert_array_equal(
            jax.random.key_data(device_augment.image_keys(key, 6)), jax.random.key_data(keys))


def _view_statistics(views):
    """Statistics of each view of float [B, V, S, S, 3] views: {name: [B·V]}."""
    views = views.reshape(-1, *views.shape[2:])
    means, stds = views.mean(axis=(1, 2)), views.std(axis=(1, 2))
    out = {f"{name} of channel {c}": values[:, c]
           for name, values in (("mean", means), ("std", stds)) for c in range(3)}
    out["sharpness"] = np.abs(np.diff(views, axis=2)).mean(axis=(1, 2, 3))  # blur lowers it
    out["colourfulness"] = views.std(axis=3).mean(axis=(1, 2))  # greyscale, saturation
    return out


def test_simclr_views_have_the_tf_recipes_statistics(jitted, images):
    """Per-view, per-channel mean and standard deviation, sharpness and colourfulness of
    the simclr views of the same images: the device recipe's and tf.data's are the same
    distributions."""
    device = np.asarray(jitted("simclr", 28)(images, jax.random.key(3))["views"])
    recipe = recipes.make_recipe("simclr", size=28)
    seeds = np.stack([np.arange(BATCH), np.full(BATCH, 9)], 1)
    host = next(iter(tf.data.Dataset.from_tensor_slices((images, seeds))
                     .map(lambda x, s: recipe(x, s)["views"]).batch(BATCH))).numpy()
    ours, theirs = _view_statistics(device), _view_statistics(host)
    for name in ours:
        p = stats.ks_2samp(ours[name], theirs[name]).pvalue
        assert p > P_MIN, f"{name}: KS p = {p:.2g}"


@pytest.mark.parametrize("kwargs", [
    {}, {"style": "swav"}, {"blur": False}, {"num_local": 0},
    {"num_global": 3, "num_local": 2, "global_scale": (0.3, 1.0), "local_scale": (0.1, 0.3),
     "global_size": 32, "local_size": 16},
])
def test_multicrop_asks_for_the_tf_recipes_views(monkeypatch, kwargs):
    """The views (number, size, scale, jitter, blur and solarise probabilities) that
    recipes.multicrop asks recipes._views for are device_augment's multicrop views."""
    asked = {}

    def record(image, seed, num, **view):
        del image, seed
        view["solarize_p"] = view.pop("solarize")
        assert view.pop("normalization") == recipes.ImageNetNorm
        asked[view["size"], tuple(view["scale"])] = (num, view)
        return tf.zeros([num, view["size"], view["size"], 3])

    monkeypatch.setattr(recipes, "_views", record)
    recipes.make_recipe("multicrop", **kwargs)(tf.zeros([40, 40, 3], tf.uint8),
                                               tf.constant([0, 0]))
    settings = device_augment.make_device_recipe("multicrop", **kwargs).keywords
    del settings["normalization"]
    ours = device_augment.multicrop_views(**settings)
    assert {(view["size"], tuple(view["scale"])): (num, view)
            for num, view in ours.values()} == asked


# ------------------------------------------------------------ arguments


def _keyword_parameters(fn):
    return {name: p for name, p in inspect.signature(fn).parameters.items()
            if p.kind is p.KEYWORD_ONLY}


def test_device_recipes_take_the_tf_recipes_arguments_and_defaults():
    for name, device_recipe in device_augment.DEVICE_RECIPES.items():
        ours = _keyword_parameters(device_recipe)
        assert sorted(ours) == sorted(_keyword_parameters(recipes.RECIPES[name])), name
        assert all(p.default is p.empty for p in ours.values()), "defaults come from tf"
    assert device_augment.make_device_recipe("mae").keywords["scale"] == (0.2, 1.0)
    bound = device_augment.make_device_recipe("byol", blur=(0.5, 0.5)).keywords
    assert bound["blur"] == (0.5, 0.5) and bound["solarize"] == (0.0, 0.2)


@pytest.mark.parametrize("name, kwargs, message", [
    ("evaluation", {}, "no device augmentation recipe 'evaluation'; choose one of "
                       "['byol', 'mae', 'multicrop', 'simclr'] (others run in tf.data)."),
    ("simclr", {"sise": 28}, "recipe 'simclr' has no argument(s) ['sise']; it takes "
                             "['blur', 'normalization', 'scale', 'size', 'strength']."),
])
def test_unknown_recipe_or_argument_is_one_line(name, kwargs, message):
    with pytest.raises(ValueError) as error:
        device_augment.make_device_recipe(name, **kwargs)
    assert str(error.value) == message


@pytest.mark.parametrize("name, kwargs, message", [
    ("simclr", {"size": 6}, "views of 6 pixels are too small to blur with a radius of 6; "
                            "turn blurring off with the recipe's blur argument."),
    ("multicrop", {"style": "moco"}, "multicrop style must be 'dino' or 'swav', not 'moco'."),
])
def test_bad_settings_are_one_line_when_the_recipe_is_traced(name, kwargs, message):
    recipe = device_augment.make_device_recipe(name, **kwargs)
    with pytest.raises(ValueError) as error:
        jax.eval_shape(recipe, jnp.zeros((2, 28, 28, 3), jnp.uint8), jax.random.key(0))
    assert str(error.value) == message


# ---------------------------------------------------------------- in the training step


def test_views_depend_only_on_the_examples_position():
    """What makes the views the same on 1 or 8 devices and after resuming: an example's
    views are a function of its position in the stream, not of its batch."""
    augment_in_step = jax.jit(train.augment_on_device(
        device_augment.make_device_recipe("mae", size=28), 0))
    batch = {"image": _fashion_like(4), "position": np.array([7, 8, 9, 10], np.int32),
             "label": np.arange(4)}
    whole = augment_in_step(batch)
    half = augment_in_step(jax.tree.map(lambda x: x[2:], batch))
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
