"""The pretext recipes (jigsaw, relative_position, pirl): shapes, determinism, where the
tiles and patches come from, their order and label, and the argument checks."""
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl.data import recipes
from jax_ssl.losses.pretext import RELATIVE_POSITION_OFFSETS, max_hamming_permutations

IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
SEEDS = [tf.constant([i, 7], tf.int64) for i in range(120)]


def _random_image(h, w):
    return tf.constant(np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8))


def _index_image(h, w, scale=1.0):
    """float32 [h, w, 3]: every channel holds the pixel's index row·w + col, times scale."""
    index = np.arange(h * w, dtype=np.float32).reshape(h, w) * scale
    return tf.constant(np.repeat(index[:, :, None], 3, axis=2))


def _top_left(values, width, scale=1.0):
    """(row, col) of the smallest index in ``values`` (an [.., t, t] block of indices)."""
    index = int(round(float(np.min(values)) / scale))
    return index // width, index % width


@pytest.mark.parametrize("name, kwargs, image, shapes", [
    ("jigsaw", dict(size=27, tile=7, num_permutations=100), (28, 28),
     {"tiles": (9, 7, 7, 3), "permutation": ()}),
    ("jigsaw", dict(size=27, tile=7, num_permutations=None), (28, 28), {"tiles": (9, 7, 7, 3)}),
    ("jigsaw", dict(size=40, grid=2, tile=16, num_permutations=24), (30, 50),
     {"tiles": (4, 16, 16, 3), "permutation": ()}),
    ("relative_position", dict(patch=7, gap=2, jitter=1), (28, 28),
     {"patches": (2, 7, 7, 3), "position": ()}),
    ("relative_position", dict(patch=8, gap=4, jitter=2, grey=0.5), (20, 30),
     {"patches": (2, 8, 8, 3), "position": ()}),
    ("pirl", dict(size=28, jigsaw_size=27, tile=7), (28, 28),
     {"image": (28, 28, 3), "tiles": (9, 7, 7, 3)}),
])
def test_shapes_dtypes_and_determinism(name, kwargs, image, shapes):
    recipe = recipes.make_recipe(name, **kwargs)
    image = _random_image(*image)
    out = recipe(image, SEEDS[0])
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes
    # Traceable without AutoGraph (as in tf.data's map), and the same values.
    traced = tf.function(recipe, autograph=False)(image, SEEDS[0])
    again = recipe(image, SEEDS[0])
    for key, value in out.items():
        assert value.dtype == (tf.int32 if key in ("permutation", "position") else tf.float32)
        np.testing.assert_array_equal(value.numpy(), again[key].numpy())
        np.testing.assert_allclose(value.numpy(), traced[key].numpy(), atol=1e-4)
    other = recipe(image, SEEDS[1])
    assert not all(np.array_equal(out[k].numpy(), other[k].numpy()) for k in out)


@pytest.mark.parametrize("name, kwargs", [
    ("jigsaw", dict(size=27, tile=7, num_permutations=100)),
    ("relative_position", dict(patch=7, gap=2, jitter=1)),
])
def test_recipes_run_in_a_tf_data_map(name, kwargs):
    recipe = recipes.make_recipe(name, **kwargs)
    image = _random_image(28, 28)
    dataset = tf.data.Dataset.from_tensors((image, SEEDS[0])).repeat(2).map(recipe)
    first, second = list(dataset)
    for key, value in recipe(image, SEEDS[0]).items():
        np.testing.assert_allclose(first[key].numpy(), value.numpy(), atol=1e-5)
        np.testing.assert_array_equal(first[key].numpy(), second[key].numpy())


def _check_tiles_in_cells(tiles, order, *, height, width, size, grid, tile):
    """Output tile i [t, t, C] (of an index image) lies in cell ``order[i]`` of one
    ``size`` crop of the image: some crop corner is consistent with all the tiles."""
    cell = size // grid
    low = np.array([0, 0])
    high = np.array([height - size, width - size])
    for i, source in enumerate(order):
        r, c = divmod(int(source), grid)
        for channel in range(tiles.shape[-1]):
            block = tiles[i, :, :, channel]
            corner = np.array(_top_left(block, width))
            # The tile is a contiguous tile × tile block of the image.
            expected = (corner[0] + np.arange(tile))[:, None] * width + corner[1] + np.arange(tile)
            np.testing.assert_array_equal(np.round(block).astype(int), expected)
            origin = np.array([r * cell, c * cell])  # the cell's corner in the crop
            low = np.maximum(low, corner - origin - (cell - tile))
            high = np.minimum(high, corner - origin)
    assert np.all(low <= high), f"no crop corner puts every tile in its cell: {low} > {high}"


@pytest.mark.parametrize("height, width, size, grid, tile, channel_jitter", [
    (27, 27, 27, 3, 7, 0),   # the crop is the whole image
    (28, 28, 27, 3, 7, 0),   # Fashion-MNIST: no resizing, the crop moves by up to 1 px
    (40, 45, 30, 3, 8, 2),   # the crop anywhere; channels shifted within their cells
    (24, 24, 24, 2, 12, 0),  # tile = cell: no freedom inside the cell
])
def test_jigsaw_tiles_lie_in_their_cells_in_the_permutation_order(height, width, size, grid,
                                                                  tile, channel_jitter):
    perms = max_hamming_permutations(20, grid * grid, 0)
    recipe = recipes.make_recipe("jigsaw", size=size, grid=grid, tile=tile,
                                 num_permutations=20, grey=0.0,
                                 channel_jitter=channel_jitter, normalize_tiles=False,
                                 normalization=IDENTITY)
    recipe = tf.function(recipe, autograph=False)
    image = _index_image(height, width)
    shifted_channels = 0
    for seed in SEEDS[:12]:
        out = recipe(image, seed)
        tiles, permutation = out["tiles"].numpy(), int(out["permutation"])
        _check_tiles_in_cells(tiles, perms[permutation], height=height, width=width,
                              size=size, grid=grid, tile=tile)
        shifted_channels += int(np.any(tiles[..., 0] != tiles[..., 2]))
    assert (shifted_channels > 0) == (channel_jitter > 0)


def test_jigsaw_permutation_is_uniform_over_the_set():
    recipe = tf.function(recipes.make_recipe("jigsaw", size=27, tile=7, num_permutations=10),
                         autograph=False)
    image = _random_image(28, 28)
    labels = np.array([int(recipe(image, seed)["permutation"]) for seed in SEEDS])
    assert labels.min() >= 0 and labels.max() < 10
    assert len(set(labels)) == 10
    big = tf.function(recipes.make_recipe("jigsaw", size=27, tile=7, num_permutations=100),
                      autograph=False)
    assert len({int(big(image, seed)["permutation"]) for seed in SEEDS[:40]}) > 25


def test_jigsaw_without_a_permutation_set_shuffles_all_the_tiles():
    recipe = tf.function(recipes.make_recipe(
        "jigsaw", size=27, tile=9, num_permutations=None, grey=0.0, channel_jitter=0,
        normalize_tiles=False, normalization=IDENTITY), autograph=False)
    image = _index_image(27, 27)
    orders = set()
    for seed in SEEDS[:30]:
        tiles = recipe(image, seed)["tiles"].numpy()  # tile = cell: tiles are the cells
        corners = [_top_left(t, 27) for t in tiles]
        order = tuple(3 * (r // 9) + c // 9 for r, c in corners)
        assert sorted(order) == list(range(9))
        orders.add(order)
    assert len(orders) > 25


def test_jigsaw_tiles_are_standardised_one_by_one():
    out = recipes.make_recipe("jigsaw", size=27, tile=7, num_permutations=None)(
        _random_image(28, 28), SEEDS[2])
    tiles = out["tiles"].numpy().reshape(9, -1)
    np.testing.assert_allclose(tiles.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(tiles.std(axis=1), 1.0, atol=1e-3)
    # Over the pixels and the channels together, not channel by channel.
    channel_means = out["tiles"].numpy().mean(axis=(1, 2))
    assert np.abs(channel_means).max() > 0.05


def test_jigsaw_resizes_only_images_smaller_than_the_crop():
    """A 20-px image is resized to 28 (size + 1) and the 27-px crop moves over it."""
    recipe = tf.function(recipes.make_recipe(
        "jigsaw", size=27, tile=9, num_permutations=None, grey=0.0, channel_jitter=0,
        normalize_tiles=False, normalization=IDENTITY), autograph=False)
    small = _index_image(20, 20, scale=1 / 400)
    tiles = [recipe(small, seed)["tiles"].numpy() for seed in SEEDS[:12]]
    assert tiles[0].shape == (9, 9, 9, 3)
    assert not np.allclose(np.round(tiles[0] * 400), tiles[0] * 400, atol=1e-3)  # resampled
    assert len({round(float(t.min()), 5) for t in tiles}) > 1  # the crop's corner moves


@pytest.mark.parametrize("kwargs, argument", [
    (dict(size=27, tile=10), "tile"),
    (dict(size=255, grid=3, tile=86), "tile"),
    (dict(size=40, grid=2, tile=16, num_permutations=25), "num_permutations"),
    (dict(size=27, tile=7, num_permutations=0), "num_permutations"),
    (dict(size=27, tile=7, channel_jitter=-1), "channel_jitter"),
])
def test_jigsaw_arguments_are_checked_when_made(kwargs, argument):
    with pytest.raises(ValueError, match=rf"^{argument}=") as info:
        recipes.make_recipe("jigsaw", **kwargs)
    assert "\n" not in str(info.value)


def test_relative_position_neighbour_is_at_its_offset():
    patch, gap, jitter = 7, 2, 1
    recipe = tf.function(recipes.make_recipe(
        "relative_position", patch=patch, gap=gap, jitter=jitter, normalization=IDENTITY),
        autograph=False)
    image = _index_image(28, 30)
    positions = []
    for seed in SEEDS[:80]:
        out = recipe(image, seed)
        patches, position = out["patches"].numpy(), int(out["position"])
        centre = np.array(_top_left(patches[0], 30))
        neighbour = np.array(_top_left(patches[1], 30))
        expected = np.array(RELATIVE_POSITION_OFFSETS[position]) * (patch + gap)
        assert np.all(np.abs(neighbour - centre - expected) <= 2 * jitter), (position, seed)
        positions.append(position)
    assert set(positions) == set(range(8))


def test_relative_position_checks_the_jitter():
    with pytest.raises(ValueError, match="^jitter=2 .*gap"):
        recipes.make_recipe("relative_position", patch=7, gap=3, jitter=2)
    with pytest.raises(ValueError, match="^gap="):
        recipes.make_recipe("relative_position", gap=-1, jitter=0)
    recipes.make_recipe("relative_position", patch=7, gap=2, jitter=1)


def test_pirl_tiles_are_a_shuffled_jigsaw_of_a_crop():
    """jigsaw_scale (1, 1) on a square image: the tiles' region is the whole image."""
    side, grid, tile = 27, 3, 7
    cell = side // grid
    scale = 1.0 / (side * side)  # index image in [0, 1], as the crop clips to it
    recipe = tf.function(recipes.make_recipe(
        "pirl", size=16, jigsaw_size=side, jigsaw_scale=(1.0, 1.0), tile=tile,
        jitter=(0.0, 0.0, 0.0, 0.0), grey=0.0, normalization=IDENTITY), autograph=False)
    image = _index_image(side, side, scale)
    orders = set()
    for seed in SEEDS[:20]:
        out = recipe(image, seed)
        assert out["image"].shape == (16, 16, 3)
        cells = []
        for t in out["tiles"].numpy():  # flipped or not, the smallest index is a corner
            r, c = _top_left(t, side, scale)
            assert r % cell <= cell - tile and c % cell <= cell - tile, (r, c)
            cells.append(grid * (r // cell) + c // cell)
        assert sorted(cells) == list(range(grid * grid))
        orders.add(tuple(cells))
    assert len(orders) > 15


def test_pirl_checks_the_tile():
    with pytest.raises(ValueError, match="^tile=.*jigsaw_size"):
        recipes.make_recipe("pirl", jigsaw_size=27, tile=10)
