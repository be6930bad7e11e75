"""The two-view and MAE recipes as JAX ops, run inside the jitted training step.

For sources held in memory (Fashion-MNIST, the digits: ``IndexedSource.image_shape``), the
trainer feeds the step the stored uint8 images and augments them there, so that the input
no longer competes with the step for the host's cores (on 2 cores the tf.data recipe took
as long as the demo's step). Folders and TFDS keep the tf.data recipes.

The same distributions as :mod:`jax_ssl.data.recipes` (``simclr``, ``byol``, ``mae``),
drawn with ``jax.random`` instead of TF's stateless RNG, and the same pixels for the same
draws: torchvision's RandomResizedCrop boxes resized as :mod:`jax_ssl.data.resample`
does (antialiased, dense per-crop matrices over the whole image), flip, ColorJitter (four
ops in a random order, :mod:`jax_ssl.data.augment`'s arithmetic), RandomGrayscale,
GaussianBlur (reflect padding), RandomSolarize, normalisation. A recipe here is
``(image uint8 [H, W, 3], key) -> dict`` for one image; ``jax.vmap`` batches it.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jax_ssl.data import augment, recipes

_GREY = jnp.asarray(augment._GRAY_WEIGHTS, jnp.float32)


# ------------------------------------------------------------------ parameters drawn


def crop_boxes(key, height: int, width: int, num: int, scale, ratio=(3 / 4, 4 / 3)):
    """``num`` RandomResizedCrop boxes, as :func:`augment.resized_crop_boxes` draws them:
    ten candidates (area ~ U(scale)·H·W, log-uniform ratio, rounded sides), the first
    that fits, else the centre crop with the ratio clamped; uniform integer offsets.

    Returns: int32 [num, 4] of (top, left, h, w).
    """
    area_key, ratio_key, offset_key = jax.random.split(key, 3)
    attempts = (num, augment._CROP_ATTEMPTS)
    area = height * width * jax.random.uniform(area_key, attempts, minval=scale[0],
                                               maxval=scale[1])
    aspect = jnp.exp(jax.random.uniform(ratio_key, attempts, minval=math.log(ratio[0]),
                                        maxval=math.log(ratio[1])))
    ws = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
    hs = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
    valid = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = jnp.argmax(valid, axis=1)
    found = valid.any(axis=1)
    in_ratio = width / height
    fallback = (round(width / ratio[0]) if in_ratio < ratio[0] else height,
                round(height * ratio[1]) if in_ratio > ratio[1] else width)
    size = jnp.where(found[:, None],
                     jnp.stack([jnp.take_along_axis(hs, first[:, None], 1)[:, 0],
                                jnp.take_along_axis(ws, first[:, None], 1)[:, 0]], 1),
                     jnp.asarray(fallback, jnp.int32))
    room = jnp.asarray([height, width], jnp.int32) - size
    drawn = jnp.floor(jax.random.uniform(offset_key, (num, 2)) * (room + 1)).astype(jnp.int32)
    offset = jnp.where(found[:, None], drawn, room // 2)
    return jnp.concatenate([offset, size], axis=1)


def jitter_params(key, brightness, contrast, saturation, hue):
    """(factors float32 [4], order int32 [4]) as :func:`augment.color_jitter_params`."""
    factor_key, order_key = jax.random.split(key)
    lo = jnp.asarray([max(0.0, 1.0 - brightness), max(0.0, 1.0 - contrast),
                      max(0.0, 1.0 - saturation), -hue], jnp.float32)
    hi = jnp.asarray([1.0 + brightness, 1.0 + contrast, 1.0 + saturation, hue], jnp.float32)
    factors = lo + (hi - lo) * jax.random.uniform(factor_key, (4,))
    return factors, jax.random.permutation(order_key, 4).astype(jnp.int32)


# ------------------------------------------------------------------ ops, given parameters


def axis_weights(offset, length, n_image: int, n_out: int, method: str, gain=1.0):
    """:func:`resample.image_axis_weights` of one crop: float32 [n_out, n_image], row i
    the antialiased kernel of output pixel i, zero outside [offset, offset + length),
    each row summing to ``gain``."""
    kernel = _KERNELS[method]
    length = length.astype(jnp.float32)
    scale = length / n_out
    center = (jnp.arange(n_out, dtype=jnp.float32)[:, None] + 0.5) * scale - 0.5
    position = jnp.arange(n_image, dtype=jnp.float32)[None, :] - offset.astype(jnp.float32)
    inside = (position >= 0.0) & (position < length)
    weights = jnp.where(inside, kernel((position - center) / jnp.maximum(scale, 1.0)), 0.0)
    return weights * (gain / weights.sum(-1, keepdims=True))


def _keys_cubic(x):
    x = jnp.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1.0
    far_x = jnp.minimum(x, 2.0)
    far = ((-0.5 * far_x + 2.5) * far_x - 4.0) * far_x + 2.0
    return jnp.where(x < 1.0, near, far)


_KERNELS = {"bilinear": lambda x: jax.nn.relu(1.0 - jnp.abs(x)), "bicubic": _keys_cubic}


def crop_resize_flip(image, box, size: int, method: str, flip):
    """The crop ``box`` of uint8 ``image`` [H, W, 3] resized to [size, size, 3] in [0, 1]
    (clipped, as torchvision clamps bicubic overshoots), mirrored when ``flip``."""
    height, width, _ = image.shape
    rows = axis_weights(box[0], box[2], height, size, method, 1.0 / 255.0)
    columns = axis_weights(box[1], box[3], width, size, method)
    columns = jnp.where(flip, columns[::-1], columns)
    out = jnp.einsum("ih,hwc,jw->ijc", rows, image.astype(jnp.float32), columns)
    return jnp.clip(out, 0.0, 1.0)


def grey(x):
    """ITU-R 601 luma of float [..., 3] → [...]."""
    return x @ _GREY


def adjust_brightness(x, factor):
    return jnp.clip(x * factor, 0.0, 1.0)


def adjust_contrast(x, factor):
    return jnp.clip(factor * x + (1.0 - factor) * grey(x).mean(), 0.0, 1.0)


def adjust_saturation(x, factor):
    return jnp.clip(factor * x + (1.0 - factor) * grey(x)[..., None], 0.0, 1.0)


def adjust_hue(x, delta):
    """HSV round trip with h ← (h + delta) mod 1, as ``tf.image.adjust_hue``."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    value = jnp.max(x, axis=-1)
    spread = value - jnp.min(x, axis=-1)
    safe = jnp.where(spread > 0, spread, 1.0)
    hue = jnp.where(value == r, (g - b) / safe,
                    jnp.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)) / 6.0
    hue = jnp.where(spread > 0, hue, 0.0)
    hue = jnp.mod(hue + delta, 1.0)
    saturation = jnp.where(value > 0, spread / jnp.where(value > 0, value, 1.0), 0.0)
    sector = hue * 6.0
    channel = jnp.mod(jnp.asarray([5.0, 3.0, 1.0]) + sector[..., None], 6.0)
    ramp = jnp.clip(jnp.minimum(channel, 4.0 - channel), 0.0, 1.0)
    return value[..., None] * (1.0 - saturation[..., None] * ramp)


def color_jitter(x, factors, order, strengths):
    """The four jitter ops in ``order`` with ``factors``; an op of strength 0 is skipped."""
    ops = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
    branches = [(lambda y, op=op, i=i: op(y, factors[i])) if strength else (lambda y: y)
                for i, (op, strength) in enumerate(zip(ops, strengths, strict=True))]
    for k in range(4):
        x = jax.lax.switch(order[k], branches, x)
    return x


def _reflect_taps(n: int, radius: int) -> np.ndarray:
    """[2r + 1, n, n] 0/1: tap t of output i reads input reflect(i + t − r), torch's
    "reflect" padding (the edge pixel is not repeated)."""
    taps = np.zeros((2 * radius + 1, n, n), np.float32)
    for t in range(2 * radius + 1):
        source = np.arange(n) + t - radius
        source = np.abs(source)
        source = np.where(source > n - 1, 2 * (n - 1) - source, source)
        taps[t, np.arange(n), source] = 1.0
    return taps


def gaussian_blur(x, sigma, radius: int):
    """Separable Gaussian of ``sigma`` with 2·radius + 1 taps, reflect padding: float
    [H, W, 3] → [H, W, 3], as :func:`augment.gaussian_blur` given that sigma."""
    offsets = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    kernel = jnp.exp(-0.5 * jnp.square(offsets / sigma))
    kernel = kernel / kernel.sum()
    rows = jnp.einsum("t,tij->ij", kernel, _reflect_taps(x.shape[0], radius))
    columns = jnp.einsum("t,tij->ij", kernel, _reflect_taps(x.shape[1], radius))
    return jnp.einsum("ih,hwc,jw->ijc", rows, x, columns)


def solarize(x):
    return jnp.minimum(x, 1.0 - x)  # threshold 0.5 on [0, 1]


# ------------------------------------------------------------------ recipes


def _views(image, key, num, *, size, scale, interpolation, blur, solarize_p, jitter,
           grey_p=0.2, jitter_p=0.8, normalization=recipes.ImageNetNorm):
    """``num`` views of one image: recipes._views's steps, with jax.random draws."""
    box_key, *view_keys = jax.random.split(key, num + 1)
    boxes = crop_boxes(box_key, image.shape[0], image.shape[1], num, scale)
    sigma_lo, sigma_hi, radius = augment._blur_setup((0.1, 2.0))
    views = []
    for v, view_key in enumerate(view_keys):
        flip_key, gate_key, jitter_key, grey_key, blur_key, sigma_key, solar_key = (
            jax.random.split(view_key, 7))
        x = crop_resize_flip(image, boxes[v], size, interpolation,
                             jax.random.bernoulli(flip_key, 0.5))
        if jitter_p and any(jitter):
            factors, order = jitter_params(jitter_key, *jitter)
            x = jnp.where(jax.random.bernoulli(gate_key, jitter_p),
                          color_jitter(x, factors, order, jitter), x)
        if grey_p:
            x = jnp.where(jax.random.bernoulli(grey_key, grey_p),
                          jnp.repeat(grey(x)[..., None], 3, axis=-1), x)
        if blur[v]:
            sigma = jax.random.uniform(sigma_key, minval=sigma_lo, maxval=sigma_hi)
            x = jnp.where(jax.random.bernoulli(blur_key, blur[v]),
                          gaussian_blur(x, sigma, radius), x)
        if solarize_p[v]:
            x = jnp.where(jax.random.bernoulli(solar_key, solarize_p[v]), solarize(x), x)
        views.append(x)
    mean, std = (np.asarray(v, np.float32) for v in normalization)
    return (jnp.stack(views) - mean) / std


def simclr(image, key, *, size=224, scale=(0.08, 1.0), strength=1.0, blur=0.5,
           normalization=recipes.ImageNetNorm):
    """:func:`recipes.simclr` on the device: ``views`` [2, size, size, 3]."""
    jitter = (0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)
    return {"views": _views(image, key, 2, size=size, scale=scale, interpolation="bilinear",
                            blur=(blur, blur), solarize_p=(0.0, 0.0), jitter=jitter,
                            normalization=normalization)}


def byol(image, key, *, size=224, scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1),
         blur=(1.0, 0.1), solarize=(0.0, 0.2), interpolation="bicubic",
         normalization=recipes.ImageNetNorm):
    """:func:`recipes.byol` on the device: ``views`` [2, size, size, 3]."""
    return {"views": _views(image, key, 2, size=size, scale=scale,
                            interpolation=interpolation, blur=blur, solarize_p=solarize,
                            jitter=jitter, normalization=normalization)}


def mae(image, key, *, size=224, scale=(0.2, 1.0), normalization=recipes.ImageNetNorm):
    """:func:`recipes.mae` on the device: ``image`` [size, size, 3]."""
    box_key, flip_key = jax.random.split(key)
    box = crop_boxes(box_key, image.shape[0], image.shape[1], 1, scale)[0]
    x = crop_resize_flip(image, box, size, "bicubic", jax.random.bernoulli(flip_key, 0.5))
    mean, std = (np.asarray(v, np.float32) for v in normalization)
    return {"image": (x - mean) / std}


DEVICE_RECIPES = {"simclr": simclr, "byol": byol, "mae": mae}


def make_device_recipe(name: str, **kwargs):
    """The device recipe ``name`` with the tf recipe's keyword arguments bound, or None
    for a recipe that runs only in tf.data (multicrop). Unknown arguments are the same
    error as :func:`recipes.make_recipe`'s."""
    recipes.make_recipe(name, **kwargs)  # the same checks and message
    if name not in DEVICE_RECIPES:
        return None
    return functools.partial(DEVICE_RECIPES[name], **kwargs)
