"""Augmentation recipes: an image and a seed in, the method's views out (DESIGN.md §6).

A recipe is a function ``(image uint8 [H, W, 3], seed int64 [2]) -> dict`` of float32
tensors, built by :func:`make_recipe` from a config's ``data.recipe`` name and keyword
arguments. Outputs (the pipeline adds ``label`` and batches them):

- ``simclr``, ``byol``: ``views`` [2, S, S, 3]
- ``multicrop``: ``global_views`` [n, S, S, 3] and ``local_views`` [m, s, s, 3]
- ``mae``, ``eval``: ``image`` [S, S, 3]

Parameters default to the official values; each recipe names its source.
"""
from __future__ import annotations

import functools
import inspect

import tensorflow as tf

from jax_ssl.data import augment

ImageNetNorm = (augment.IMAGENET_MEAN, augment.IMAGENET_STD)


def _split(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _views(image, seed, num, *, size, scale, interpolation, blur, solarize, jitter, grey=0.2,
           jitter_p=0.8, normalization=ImageNetNorm):
    """``num`` views of one size: crop, flip, colour jitter, greyscale, blur (``blur[v]``),
    solarise (``solarize[v]``), normalise; crop and blur run on all the views at once."""
    crop_seed, view_seed = _split(seed, 2)
    crops = augment.random_resized_crops(image, crop_seed, num, size, scale=scale,
                                         method=interpolation)
    parts = [_split(s, 5) for s in _split(view_seed, num)]
    views = []
    for x, (flip, color, gray, _, _) in zip(tf.unstack(crops), parts, strict=True):
        x = augment.horizontal_flip(x, flip)
        if jitter_p:
            x = augment.color_jitter(x, color, *jitter, p=jitter_p)
        if grey:
            x = augment.random_grayscale(x, gray, grey)
        views.append(x)
    views = tf.stack(views)
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


def mae(image, seed, *, size=224, scale=(0.2, 1.0), normalization=ImageNetNorm):
    """facebookresearch/mae pre-training: RandomResizedCrop (0.2, 1) bicubic + flip."""
    crop_seed, flip_seed = _split(seed, 2)
    x = augment.random_resized_crop(image, crop_seed, size, scale=scale, method="bicubic")
    return {"image": augment.normalize(augment.horizontal_flip(x, flip_seed), *normalization)}


def evaluation(image, seed, *, size=224, resize_size=None, normalization=ImageNetNorm):
    """The deterministic eval transform: resize the short side (size/0.875), centre crop."""
    del seed
    x = augment.center_crop_eval(image, size, resize_size)
    return {"image": augment.normalize(x, *normalization)}


RECIPES = {"simclr": simclr, "byol": byol, "multicrop": multicrop, "mae": mae,
           "eval": evaluation}


def make_recipe(name: str, **kwargs):
    """The recipe ``name`` with its keyword arguments bound; unknown ones are an error."""
    if name not in RECIPES:
        raise ValueError(f"unknown augmentation recipe {name!r}; choose one of {sorted(RECIPES)}.")
    allowed = set(inspect.signature(RECIPES[name]).parameters) - {"image", "seed"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(f"recipe {name!r} has no argument(s) {unknown}; it takes "
                         f"{sorted(allowed)}.")
    return functools.partial(RECIPES[name], **kwargs)
