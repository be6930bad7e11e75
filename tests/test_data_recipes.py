"""Recipes: the views each method gets, their shapes, asymmetry and determinism."""
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl.data import augment, recipes

IMAGE = tf.constant(np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8))
SEED = tf.constant([3, 4], tf.int64)


@pytest.mark.parametrize("name, kwargs, shapes", [
    ("simclr", dict(size=32), {"views": (2, 32, 32, 3)}),
    ("byol", dict(size=24), {"views": (2, 24, 24, 3)}),
    ("multicrop", dict(global_size=32, local_size=16),
     {"global_views": (2, 32, 32, 3), "local_views": (8, 16, 16, 3)}),
    ("multicrop", dict(style="swav", global_size=32, local_size=16),
     {"global_views": (2, 32, 32, 3), "local_views": (6, 16, 16, 3)}),
    ("multicrop", dict(global_size=32, local_size=16, num_local=10),
     {"global_views": (2, 32, 32, 3), "local_views": (10, 16, 16, 3)}),
    ("multicrop", dict(global_size=32, num_local=0), {"global_views": (2, 32, 32, 3)}),
    ("mae", dict(size=40), {"image": (40, 40, 3)}),
    ("eval", dict(size=40), {"image": (40, 40, 3)}),
])
def test_view_shapes_dtype_and_determinism(name, kwargs, shapes):
    recipe = recipes.make_recipe(name, **kwargs)
    out = recipe(IMAGE, SEED)
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes
    again = recipe(IMAGE, SEED)
    for key, value in out.items():
        assert value.dtype == tf.float32
        np.testing.assert_array_equal(value.numpy(), again[key].numpy())
    if name != "eval":
        other = recipe(IMAGE, tf.constant([3, 5], tf.int64))
        assert not all(np.array_equal(out[k].numpy(), other[k].numpy()) for k in out)


def test_views_are_normalised_with_the_given_statistics():
    grey = tf.fill([40, 40, 3], tf.constant(128, tf.uint8))
    out = recipes.make_recipe("eval", size=32, normalization=((0.5,) * 3, (0.25,) * 3))
    np.testing.assert_allclose(out(grey, SEED)["image"].numpy(), (128 / 255 - 0.5) / 0.25,
                               atol=1e-5)
    imagenet = recipes.make_recipe("eval", size=32)(grey, SEED)["image"].numpy()
    np.testing.assert_allclose(imagenet[0, 0], (128 / 255 - np.array(augment.IMAGENET_MEAN))
                               / np.array(augment.IMAGENET_STD), atol=1e-5)


def test_byol_views_are_asymmetric():
    """View 1 is always blurred and never solarised; view 2 is solarised 20% of the time."""
    flat = tf.fill([64, 64, 3], tf.constant(200, tf.uint8))  # jitter may move it; blur can't
    recipe = recipes.make_recipe("byol", size=32, jitter=(0.0, 0.0, 0.0, 0.0),
                                 normalization=((0.0,) * 3, (1.0,) * 3))
    corner = tf.function(lambda seed: recipe(flat, seed)["views"][:, 0, 0, 0])  # traced once
    solarised = np.array([corner(tf.constant([i, 0], tf.int64)).numpy() < 0.5
                          for i in range(200)])
    assert not solarised[:, 0].any()
    assert 0.1 < solarised[:, 1].mean() < 0.3


def test_make_recipe_rejects_unknown_names_and_arguments():
    with pytest.raises(ValueError, match="unknown augmentation recipe 'simclrr'"):
        recipes.make_recipe("simclrr")
    with pytest.raises(ValueError, match=r"recipe 'mae' has no argument\(s\) \['blur'\]"):
        recipes.make_recipe("mae", blur=0.5)
    with pytest.raises(ValueError, match="style must be 'dino' or 'swav'"):
        recipes.make_recipe("multicrop", style="moco")(IMAGE, SEED)
