"""Augmentation recipes: an image and a seed in, the method's views out (DESIGN.md §6).

A recipe is a function ``(image uint8 [H, W, 3], seed int64 [2]) -> dict`` of float32
tensors, built by :func:`make_recipe` from a config's ``data.recipe`` name and keyword
arguments. Outputs (the pipeline adds ``label`` and batches them):

- ``simclr``, ``byol``: ``views`` [2, S, S, 3]
- ``multicrop``: ``global_views`` [n, S, S, 3] and ``local_views`` [m, s, s, 3]
- ``mae``, ``finetune``, ``eval``: ``image`` [S, S, 3]
- ``jigsaw``: ``tiles`` [9, t, t, 3] and ``permutation`` int32
- ``relative_position``: ``patches`` [2, p, p, 3] (centre, neighbour) and ``position``
- ``pirl``: ``image`` [S, S, 3] and ``tiles`` [9, t, t, 3] of the same image

Parameters default to the official values; each recipe names its source.
"""
from __future__ import annotations

import functools
import inspect
import math

import tensorflow as tf

from jax_ssl.data import augment, randaugment
from jax_ssl.puzzles import RELATIVE_POSITION_OFFSETS, max_hamming_permutations

ImageNetNorm = (augment.IMAGENET_MEAN, augment.IMAGENET_STD)


def _split(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _flip_jitter_grey(crops, parts, *, jitter, jitter_p, grey):
    """Each crop [n, h, w, 3] flipped, colour-jittered and greyed with its own seeds
    ``parts[i]`` = (flip, colour, grey, ...)."""
    views = []
    for x, (flip, color, gray, *_) in zip(tf.unstack(crops), parts, strict=True):
        x = augment.horizontal_flip(x, flip)
        if jitter_p:
            x = augment.color_jitter(x, color, *jitter, p=jitter_p)
        if grey:
            x = augment.random_grayscale(x, gray, grey)
        views.append(x)
    return tf.stack(views)


def _views(image, seed, num, *, size, scale, interpolation, blur, solarize, jitter, grey=0.2,
           jitter_p=0.8, normalization=ImageNetNorm):
    """``num`` views of one size: crop, flip, colour jitter, greyscale, blur (``blur[v]``),
    solarise (``solarize[v]``), normalise; crop and blur run on all the views at once."""
    crop_seed, view_seed = _split(seed, 2)
    crops = augment.random_resized_crops(image, crop_seed, num, size, scale=scale,
                                         method=interpolation)
    parts = [_split(s, 5) for s in _split(view_seed, num)]
    views = _flip_jitter_grey(crops, parts, jitter=jitter, jitter_p=jitter_p, grey=grey)
    if any(blur):
        views = augment.gaussian_blurs(views, [s[3] for s in parts], blur)
    if any(solarize):
        views = tf.stack([augment.solarize(x, s[4], p) if p else x
                          for x, s, p in zip(tf.unstack(views), parts, solarize, strict=True)])
    return augment.normalize(views, *normalization)


def simclr(image, seed, *, size=224, scale=(0.08, 1.0), strength=1.0, blur=0.5,
           normalization=ImageNetNorm):
    """google-research/simclr: jitter (0.8s, 0.8s, 0.8s, 0.2s) p 0.8, grey 0.2, blur p 0.5.

    Set ``blur=0`` for 32-pixel data, as SimCLR does on CIFAR-10.
    """
    jitter = (0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)
    return {"views": _views(image, seed, 2, size=size, scale=scale, interpolation="bilinear",
                            blur=(blur, blur), solarize=(0.0, 0.0), jitter=jitter,
                            normalization=normalization)}


def byol(image, seed, *, size=224, scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1),
         blur=(1.0, 0.1), solarize=(0.0, 0.2), interpolation="bicubic",
         normalization=ImageNetNorm):
    """deepmind-research/byol (and MoCo v3): asymmetric views, blur 1.0/0.1, solarise 0/0.2."""
    return {"views": _views(image, seed, 2, size=size, scale=scale,
                            interpolation=interpolation, blur=blur, solarize=solarize,
                            jitter=jitter, normalization=normalization)}


def multicrop(image, seed, *, style="dino", global_size=224, local_size=96, num_global=2,
              num_local=None, global_scale=None, local_scale=None, blur=True,
              normalization=ImageNetNorm):
    """Multi-crop of facebookresearch/dino (``DataAugmentationDINO``) or swav.

    DINO (main_dino.py defaults): global scale (0.4, 1), local (0.05, 0.4), 8 local crops
    (its best ViT-S/16 run: 10 crops, scales (0.25, 1) and (0.05, 0.25)); jitter
    (0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2; blur 1.0 on the first global view, 0.1 +
    solarise 0.2 on the second, 0.5 on local ones; bicubic resizing.
    SwAV: global (0.14, 1), local (0.05, 0.14), 6 local crops; jitter (0.8, 0.8, 0.8, 0.2)
    p 0.8, grey 0.2, blur p 0.5 everywhere, bilinear. ``blur=False`` turns blurring off
    (for images of 32 px and less, as SimCLR does on CIFAR).
    """
    if style == "dino":
        defaults = dict(jitter=(0.4, 0.4, 0.2, 0.1), interpolation="bicubic",
                        global_blur=(1.0, 0.1), global_solarize=(0.0, 0.2), local_blur=0.5,
                        global_scale=(0.4, 1.0), local_scale=(0.05, 0.4), num_local=8)
    elif style == "swav":
        defaults = dict(jitter=(0.8, 0.8, 0.8, 0.2), interpolation="bilinear",
                        global_blur=(0.5, 0.5), global_solarize=(0.0, 0.0), local_blur=0.5,
                        global_scale=(0.14, 1.0), local_scale=(0.05, 0.14), num_local=6)
    else:
        raise ValueError(f"multicrop style must be 'dino' or 'swav', not {style!r}.")
    if not blur:
        defaults.update(global_blur=(0.0, 0.0), local_blur=0.0)
    num_local = defaults["num_local"] if num_local is None else num_local
    global_scale = global_scale or defaults["global_scale"]
    local_scale = local_scale or defaults["local_scale"]
    views = functools.partial(_views, image, jitter=defaults["jitter"],
                              interpolation=defaults["interpolation"],
                              normalization=normalization)
    global_seed, local_seed = _split(seed, 2)
    out = {"global_views": views(
        global_seed, num_global, size=global_size, scale=global_scale,
        blur=[defaults["global_blur"][min(i, 1)] for i in range(num_global)],
        solarize=[defaults["global_solarize"][min(i, 1)] for i in range(num_global)])}
    if num_local:
        out["local_views"] = views(local_seed, num_local, size=local_size, scale=local_scale,
                                   blur=[defaults["local_blur"]] * num_local,
                                   solarize=[0.0] * num_local)
    return out


def mae(image, seed, *, size=224, scale=(0.2, 1.0), flip=True, normalization=ImageNetNorm):
    """facebookresearch/mae pre-training: RandomResizedCrop (0.2, 1) bicubic + flip
    (I-JEPA's: scale (0.3, 1), no flip)."""
    crop_seed, flip_seed = _split(seed, 2)
    x = augment.random_resized_crop(image, crop_seed, size, scale=scale, method="bicubic")
    if flip:
        x = augment.horizontal_flip(x, flip_seed)
    return {"image": augment.normalize(x, *normalization)}


def finetune(image, seed, *, size=224, scale=(0.08, 1.0), auto_augment=True, reprob=0.25,
             normalization=ImageNetNorm):
    """facebookresearch/mae fine-tuning (timm ``create_transform``): RandomResizedCrop
    bicubic + flip, RandAugment 'rand-m9-mstd0.5-inc1' (``auto_augment``), normalise,
    RandomErasing 'pixel' with probability ``reprob``."""
    crop_seed, flip_seed, augment_seed, erase_seed = _split(seed, 4)
    x = augment.random_resized_crop(image, crop_seed, size, scale=scale, method="bicubic")
    x = augment.horizontal_flip(x, flip_seed)
    if auto_augment:
        # timm fills the affine ops with img_mean = round(255 · mean) of the normalisation.
        fill = tuple(min(255, round(255 * m)) for m in normalization[0])
        x = randaugment.rand_augment(x, augment_seed, fill=fill)
    x = augment.normalize(x, *normalization)
    if reprob:
        x = randaugment.random_erasing(x, erase_seed, probability=reprob)
    return {"image": x}


def evaluation(image, seed, *, size=224, resize_size=None, normalization=ImageNetNorm):
    """The deterministic eval transform: resize the short side (size/0.875), centre crop."""
    del seed
    x = augment.center_crop_eval(image, size, resize_size)
    return {"image": augment.normalize(x, *normalization)}


# --- The pretext tasks' crops: tiles of a grid, patch pairs.

def _at_least(image, side: int, target: int | None = None):
    """``image`` resized (bilinear) so its short side is ``target`` (default ``side``) if
    it is shorter than ``side``; otherwise untouched."""
    target = side if target is None else target
    shape = tf.shape(image)
    short = tf.minimum(shape[0], shape[1])
    scale = target / tf.cast(short, tf.float32)
    size = tf.maximum(tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32),
                      target)
    return tf.cond(short < side, lambda: tf.image.resize(augment._to_float(image), size),
                   lambda: augment._to_float(image))


def _random_square(image, seed, side: int, target: int | None = None):
    """A random ``side``×``side`` crop (the image's short side resized up to ``target``,
    default ``side``, first if it is smaller than ``side``)."""
    x = _at_least(image, side, target)
    return tf.image.stateless_random_crop(x, [side, side, 3], seed)


def _uniform_int(seed, shape, low: int, high: int):
    """Integers uniform in [low, high] (both included)."""
    return tf.random.stateless_uniform(shape, seed, low, high + 1, tf.int32)


def grid_tiles(image, seed, *, grid: int, tile: int, channel_jitter: int = 0):
    """A ``tile``-px square at a random place in each cell of a ``grid``×``grid`` grid
    over ``image`` [S, S, C] (cells of S // grid px), cells in row-major order.

    ``channel_jitter`` j > 0 moves each colour channel of each tile by its own offset in
    [-j, j] px on each axis, kept inside the cell (Noroozi & Favaro's remedy for
    chromatic aberration). Returns [grid², tile, tile, C].
    """
    cell, channels = image.shape[0] // grid, image.shape[-1]
    base_seed, jitter_seed = _split(seed, 2)
    offset = _uniform_int(base_seed, [grid * grid, 1, 2], 0, cell - tile)
    if channel_jitter:
        offset += _uniform_int(jitter_seed, [grid * grid, channels, 2], -channel_jitter,
                               channel_jitter)
    offset = tf.clip_by_value(offset, 0, cell - tile) * tf.ones([1, channels, 1], tf.int32)
    corners = tf.constant([[r * cell, c * cell] for r in range(grid) for c in range(grid)])
    top_left = offset + corners[:, None, :]  # [tiles, channels, (y, x)]
    steps = tf.range(tile)
    ys = top_left[:, :, 0, None, None] + steps[:, None]  # [tiles, channels, tile, 1]
    xs = top_left[:, :, 1, None, None] + steps[None, :]  # [tiles, channels, 1, tile]
    ys, xs = tf.broadcast_to(ys, [grid * grid, channels, tile, tile]), tf.broadcast_to(
        xs, [grid * grid, channels, tile, tile])
    cs = tf.broadcast_to(tf.range(channels)[None, :, None, None], ys.shape)
    tiles = tf.gather_nd(image, tf.stack([ys, xs, cs], axis=-1))  # [tiles, C, tile, tile]
    return tf.transpose(tiles, [0, 2, 3, 1])


def _standardize_tiles(tiles, eps=1e-5):
    """Each tile [n, t, t, C] to mean 0 and std 1 over its pixels and channels
    (``(x - mean) / (std + eps)``), as Noroozi & Favaro normalise every tile on its own."""
    mean, variance = tf.nn.moments(tiles, axes=[1, 2, 3], keepdims=True)
    return (tiles - mean) / (tf.sqrt(variance) + eps)


def _check_grid(size, grid, tile, name="size"):
    if grid < 1:
        raise ValueError(f"grid={grid} must be >= 1 (cells per side).")
    cell = size // grid
    if not 1 <= tile <= cell:
        raise ValueError(f"tile={tile} must be between 1 and its cell's side, {name} {size} "
                         f"// grid {grid} = {cell} px (a tile larger than its cell): lower "
                         f"tile or raise {name} to >= {grid * max(tile, 1)}.")


def _check_jigsaw(*, size, grid, tile, num_permutations, channel_jitter, **_):
    _check_grid(size, grid, tile)
    orders = math.factorial(grid * grid)
    if num_permutations is not None and not 1 <= num_permutations <= orders:
        raise ValueError(f"num_permutations={num_permutations} must be between 1 and "
                         f"{grid * grid}! = {orders} (the orders of {grid * grid} tiles): "
                         "choose a number in that range, or None for any order.")
    if channel_jitter < 0:
        raise ValueError(f"channel_jitter={channel_jitter} must be >= 0 px (0 turns the "
                         "per-channel shift off).")


def _tiles(x, seed, *, grid, tile, channel_jitter=0, normalization=None,
           normalize_tiles=False):
    """The jigsaw tiles of a square float crop ``x``: normalised with ``normalization``
    (if given), cut by :func:`grid_tiles`, each tile standardised if ``normalize_tiles``.
    Returns [grid², tile, tile, 3] in cell (row-major) order."""
    if normalization is not None:
        x = augment.normalize(x, *normalization)
    tiles = grid_tiles(x, seed, grid=grid, tile=tile, channel_jitter=channel_jitter)
    return _standardize_tiles(tiles) if normalize_tiles else tiles


def _shuffled(tiles, seed):
    """The tiles in a uniformly random order."""
    order = tf.argsort(tf.random.stateless_uniform([tiles.shape[0]], seed))
    return tf.gather(tiles, order)


def jigsaw(image, seed, *, size=255, grid=3, tile=64, num_permutations=1000,
           permutation_seed=0, grey=0.3, channel_jitter=2, normalize_tiles=True,
           normalization=ImageNetNorm):
    """Noroozi & Favaro 2016 (the context-free network's input; VISSL ``jigsaw`` configs).

    A random ``size`` crop (255; an image whose short side is under ``size`` is first
    resized to ``size + 1``, 256, else left as it is), greyscale with probability
    ``grey`` (0.3), normalised; ``grid``×``grid`` cells (3: 85 px) with a random ``tile``
    (64 px) in each and each colour channel shifted by up to ``channel_jitter`` (2) px
    inside the cell; each tile standardised on its own (``normalize_tiles``). The tiles
    are shuffled by permutation ``permutation`` (uniform) of the set
    ``max_hamming_permutations(num_permutations, grid², permutation_seed)`` (1000):
    output tile i is cell ``set[permutation][i]``. ``num_permutations=None`` shuffles by
    a uniform permutation of all the tiles and returns no ``permutation`` (PIRL).
    """
    _check_jigsaw(size=size, grid=grid, tile=tile, num_permutations=num_permutations,
                  channel_jitter=channel_jitter)
    crop_seed, grey_seed, tile_seed, order_seed = _split(seed, 4)
    x = _random_square(image, crop_seed, size, size + 1)
    if grey:
        x = augment.random_grayscale(x, grey_seed, grey)
    tiles = _tiles(x, tile_seed, grid=grid, tile=tile, channel_jitter=channel_jitter,
                   normalization=normalization, normalize_tiles=normalize_tiles)
    if num_permutations is None:
        return {"tiles": _shuffled(tiles, order_seed)}
    orders = tf.constant(max_hamming_permutations(num_permutations, grid * grid,
                                                  permutation_seed), tf.int32)
    permutation = _uniform_int(order_seed, [], 0, num_permutations - 1)
    return {"tiles": tf.gather(tiles, orders[permutation]), "permutation": permutation}


def _check_relative_position(*, patch, gap, jitter, **_):
    if patch < 1:
        raise ValueError(f"patch={patch} must be >= 1 px.")
    if gap < 0:
        raise ValueError(f"gap={gap} must be >= 0 px.")
    if not 0 <= 2 * jitter <= gap:
        raise ValueError(f"jitter={jitter} must be between 0 and gap // 2 = {gap // 2} "
                         f"(2·jitter <= gap={gap}, so that jittered patches never overlap): "
                         "lower jitter or raise gap.")


def relative_position(image, seed, *, patch=96, gap=48, jitter=7, grey=0.0,
                      normalization=ImageNetNorm):
    """Doersch, Gupta & Efros 2015: a centre patch and one of its 8 neighbours.

    A random square of the grid's extent 3·``patch`` + 2·``gap`` + 2·``jitter`` (96, 48,
    7: 398 px; the image's short side resized up to it first if smaller); the centre
    patch and the neighbour at ``RELATIVE_POSITION_OFFSETS[position]`` (``position``
    uniform in 0..7), each displaced by its own jitter in [-jitter, jitter] px per axis.
    The paper fights chromatic aberration by projecting out green-magenta or dropping
    colour channels; here only greyscale with probability ``grey`` (both patches alike).
    """
    _check_relative_position(patch=patch, gap=gap, jitter=jitter)
    crop_seed, grey_seed, position_seed, jitter_seed = _split(seed, 4)
    extent = 3 * patch + 2 * gap + 2 * jitter
    x = _random_square(image, crop_seed, extent)
    if grey:
        x = augment.random_grayscale(x, grey_seed, grey)
    x = augment.normalize(x, *normalization)
    position = _uniform_int(position_seed, [], 0, 7)
    step = patch + gap
    neighbour = tf.gather(tf.constant(RELATIVE_POSITION_OFFSETS, tf.int32), position) + 1
    grid_place = tf.stack([tf.ones([2], tf.int32), neighbour])  # (row, col) on the grid
    corners = jitter + grid_place * step + _uniform_int(jitter_seed, [2, 2], -jitter, jitter)
    patches = [tf.slice(x, [corners[i, 0], corners[i, 1], 0], [patch, patch, 3])
               for i in range(2)]
    return {"patches": tf.stack(patches), "position": position}


def _check_pirl(*, jigsaw_size, grid, tile, **_):
    _check_grid(jigsaw_size, grid, tile, name="jigsaw_size")


def pirl(image, seed, *, size=224, scale=(0.08, 1.0), jigsaw_size=255,
         jigsaw_scale=(0.6, 1.0), grid=3, tile=64, jitter=(0.4, 0.4, 0.4, 0.2), grey=0.2,
         normalization=ImageNetNorm):
    """PIRL (Misra & van der Maaten 2020) as VISSL's ``pirl_jigsaw_4node_resnet.yaml``.

    ``ImgPilToPatchesAndImage``: ``image`` a RandomResizedCrop (``scale`` (0.08, 1)) at
    ``size`` (224); ``tiles`` from another RandomResizedCrop (``jigsaw_scale`` (0.6, 1))
    at ``jigsaw_size`` (255): ``grid``×``grid`` cells (85 px) with a random ``tile`` (64
    px) in each (``ImgPatchesFromTensor``), in a uniformly random order. Then each of the
    ten images on its own: ColorJitter (``jitter`` (0.4, 0.4, 0.4, 0.2)) always,
    RandomGrayscale (``grey`` 0.2), RandomHorizontalFlip, Normalize (ImageNet). VISSL's
    ``ImgPilRandomPhotometric`` (autocontrast, posterise, sharpness, solarise) is left out.
    """
    _check_pirl(jigsaw_size=jigsaw_size, grid=grid, tile=tile)
    crop_seed, view_seed, region_seed, tile_seed, look_seed, order_seed = _split(seed, 6)
    photometric = dict(jitter=jitter, jitter_p=1.0, grey=grey)
    crop = augment.random_resized_crop(image, crop_seed, size, scale=scale)
    view = _flip_jitter_grey(crop[None], [_split(view_seed, 3)], **photometric)[0]
    region = augment.random_resized_crop(image, region_seed, jigsaw_size, scale=jigsaw_scale)
    tiles = _tiles(region, tile_seed, grid=grid, tile=tile)
    tiles = _flip_jitter_grey(tiles, [_split(s, 3) for s in _split(look_seed, grid * grid)],
                              **photometric)
    return {"image": augment.normalize(view, *normalization),
            "tiles": _shuffled(augment.normalize(tiles, *normalization), order_seed)}


RECIPES = {"simclr": simclr, "byol": byol, "multicrop": multicrop, "mae": mae,
           "eval": evaluation, "jigsaw": jigsaw, "relative_position": relative_position,
           "pirl": pirl, "finetune": finetune}
# Checks of a recipe's arguments, run when it is made (and so by config validation).
CHECKS = {"jigsaw": _check_jigsaw, "relative_position": _check_relative_position,
          "pirl": _check_pirl}


def make_recipe(name: str, **kwargs):
    """The recipe ``name`` with its keyword arguments bound; unknown ones are an error."""
    if name not in RECIPES:
        raise ValueError(f"unknown augmentation recipe {name!r}; choose one of {sorted(RECIPES)}.")
    allowed = set(inspect.signature(RECIPES[name]).parameters) - {"image", "seed"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"recipe {name!r} has no argument(s) {unknown}; it takes "
                         f"{sorted(allowed)}.")
    if name in CHECKS:
        bound = inspect.signature(RECIPES[name]).bind_partial(**kwargs)
        bound.apply_defaults()
        CHECKS[name](**{k: v for k, v in bound.arguments.items() if k in allowed})
    return functools.partial(RECIPES[name], **kwargs)
