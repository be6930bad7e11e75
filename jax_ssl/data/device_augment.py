"""The augmentation recipes as jittable JAX ops, for sources held in memory (DESIGN.md §6).

:func:`make_device_recipe` gives ``(images uint8 [B, H, W, 3], key) -> dict``: what the
tf.data recipe of :mod:`jax_ssl.data.recipes` of the same name and arguments gives, for a
whole batch, run inside the jitted training step so that augmentation no longer competes
with the step for the host's cores. The draws are ``jax.random`` ones (a key per image,
split per view) rather than TF's stateless RNG, so the views differ
from tf.data's, but they follow the same distributions, and the same parameters give the
same pixels:
torchvision RandomResizedCrop boxes resized with :mod:`jax_ssl.data.resample`'s
antialiased kernels, flip, ColorJitter, RandomGrayscale, GaussianBlur, RandomSolarize and
normalisation with :mod:`jax_ssl.data.augment`'s arithmetic.

Drawing and applying are separate: :func:`crop_box` and :func:`jitter_params` map
uniforms to parameters, :func:`sample_view` draws all of one view's from a key and
:func:`sample_views` those of a batch; the ops take parameters with any leading axes.
All shapes are static; every op is a batched matmul or elementwise (no per-pixel
gathers), and a gated op is computed for every view and selected, as branches would be
under ``vmap`` anyway.
"""
from __future__ import annotations

import functools
import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax_ssl.data import augment, recipes

_GREY_WEIGHTS = np.asarray(augment._GRAY_WEIGHTS, np.float32)
_SIGMA = (0.1, 2.0)  # GaussianBlur's sigma range in every recipe
_RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default aspect ratios


# ---------------------------------------------------------------- parameters drawn


class ViewParams(NamedTuple):
    """One view's draws; the ops broadcast over any leading axes of these fields."""
    box: jax.Array  # int32 [4]: (top, left, height, width) of the crop
    flip: jax.Array  # bool: mirror horizontally
    jitter: jax.Array  # bool: apply colour jitter
    factors: jax.Array  # float32 [4]: brightness, contrast, saturation, hue shift
    order: jax.Array  # int32 [4]: order[k] is the k-th jitter op (0..3 as in factors)
    grey: jax.Array  # bool: convert to greyscale
    blur: jax.Array  # bool: blur
    sigma: jax.Array  # float32: the blur's standard deviation in pixels
    solarize: jax.Array  # bool: solarise


# Each sampler maps uniforms in [0, 1) to parameters; a view draws all its uniforms at
# once, since every separate jax.random draw is a threefry hash that XLA compiles anew
# (0.5 to 1 s each on CPU).
_BOX_UNIFORMS = 2 * augment._CROP_ATTEMPTS + 2
_JITTER_UNIFORMS = 8
_VIEW_UNIFORMS = _BOX_UNIFORMS + _JITTER_UNIFORMS + 6


def crop_box(uniforms, height: int, width: int, scale, ratio=_RATIO):
    """torchvision ``RandomResizedCrop.get_params``, as :func:`augment.resized_crop_boxes`,
    from ``_BOX_UNIFORMS`` uniforms.

    Ten candidates (area ``U(scale)·H·W``, log-uniform ratio, rounded sides); the first
    that fits wins, with uniform integer offsets; else the centre crop of the whole
    image with its aspect ratio clamped to ``ratio``. Returns int32 [4] (top, left, h, w).
    """
    attempts = augment._CROP_ATTEMPTS
    area = height * width * (scale[0] + (scale[1] - scale[0]) * uniforms[:attempts])
    log_ratio = np.log(np.asarray(ratio, np.float32))
    aspect = jnp.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * uniforms[attempts:2 * attempts])
    # jnp.round rounds half to even, like Python's round() in torchvision.
    sides = jnp.round(jnp.sqrt(jnp.stack([area / aspect, area * aspect], 1))).astype(jnp.int32)
    limits = jnp.asarray([height, width], jnp.int32)
    valid = jnp.all((sides > 0) & (sides <= limits), axis=1)
    in_ratio = width / height
    fallback = jnp.asarray([round(width / ratio[0]) if in_ratio < ratio[0] else height,
                            round(height * ratio[1]) if in_ratio > ratio[1] else width],
                           jnp.int32)
    found = valid.any()
    size = jnp.where(found, sides[jnp.argmax(valid)], fallback)
    room = limits - size
    # randint(0, room + 1); the minimum guards u·(room + 1) rounding up to room + 1.
    drawn = jnp.minimum(jnp.floor(uniforms[2 * attempts:] * (room + 1)).astype(jnp.int32), room)
    return jnp.concatenate([jnp.where(found, drawn, room // 2), size])


def jitter_params(uniforms, strengths):
    """ColorJitter's draws from ``_JITTER_UNIFORMS`` uniforms, as
    :func:`augment.color_jitter_params`: (factors float32 [4], order int32 [4]).

    Brightness, contrast, saturation ``~ U[max(0, 1 - v), 1 + v]``, the hue shift
    ``~ U[-hue, hue]``, and a uniform random order of the four ops.
    """
    brightness, contrast, saturation, hue = strengths
    lo = np.asarray([max(0.0, 1.0 - brightness), max(0.0, 1.0 - contrast),
                     max(0.0, 1.0 - saturation), -hue], np.float32)
    hi = np.asarray([1.0 + brightness, 1.0 + contrast, 1.0 + saturation, hue], np.float32)
    factors = lo + (hi - lo) * uniforms[:4]
    return factors, jnp.argsort(uniforms[4:8]).astype(jnp.int32)


def sample_view(key, blur_p, solarize_p, *, height: int, width: int, scale, jitter,
                jitter_p, grey_p) -> ViewParams:
    """Every draw of one view. ``blur_p`` and ``solarize_p`` may be traced (they differ
    between the views of a recipe); a gate is on iff ``U(0, 1) < p``, as torchvision."""
    u = jax.random.uniform(key, (_VIEW_UNIFORMS,))
    box_u, jitter_u, (flip, gate, grey, blur, sigma, solar) = jnp.split(
        u, [_BOX_UNIFORMS, _BOX_UNIFORMS + _JITTER_UNIFORMS])
    factors, order = jitter_params(jitter_u, jitter)
    return ViewParams(
        box=crop_box(box_u, height, width, scale), flip=flip < 0.5,
        jitter=gate < jitter_p, factors=factors, order=order, grey=grey < grey_p,
        blur=blur < blur_p, sigma=_SIGMA[0] + (_SIGMA[1] - _SIGMA[0]) * sigma,
        solarize=solar < solarize_p)


def image_keys(key, batch: int):
    """One key per image: ``key`` itself if it holds ``batch`` keys, else split from it.
    Raw uint32 keys (``jax.random.PRNGKey``) are wrapped as typed ones."""
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    return key if key.shape == (batch,) else jax.random.split(key, batch)


def sample_views(key, batch: int, blur_p, solarize_p, **view) -> ViewParams:
    """:func:`sample_view` for each of ``len(blur_p)`` views of ``batch`` images, the
    :func:`image_keys` of ``key`` split per view: fields with leading axes [batch, views]."""
    view_keys = jax.vmap(lambda k: jax.random.split(k, len(blur_p)))(image_keys(key, batch))
    per_view = jax.vmap(functools.partial(sample_view, **view))
    return jax.vmap(per_view, in_axes=(0, None, None))(
        view_keys, jnp.asarray(blur_p, jnp.float32), jnp.asarray(solarize_p, jnp.float32))


# ---------------------------------------------------------------- ops, given parameters


def _keys_cubic(x):
    """Keys' cubic, a = −0.5, as resample's "bicubic"; 0 for |x| ≥ 2."""
    x = jnp.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1.0
    far_x = jnp.minimum(x, 2.0)
    far = ((-0.5 * far_x + 2.5) * far_x - 4.0) * far_x + 2.0
    return jnp.where(x < 1.0, near, far)


_KERNELS = {"bilinear": lambda x: jnp.maximum(1.0 - jnp.abs(x), 0.0), "bicubic": _keys_cubic}


def axis_matrix(offset, length, n_image: int, n_out: int, method: str, gain=1.0):
    """Antialiased resampling matrices of crops of one image axis, as
    :func:`resample.image_axis_weights`: row i is output pixel i's kernel over the
    ``n_image`` pixels, zero outside ``[offset, offset + length)``, summing to ``gain``.

    offset, length: int [...]. Returns float32 [..., n_out, n_image].
    """
    length = jnp.asarray(length, jnp.float32)[..., None, None]
    scale = length / n_out
    center = (jnp.arange(n_out, dtype=jnp.float32)[:, None] + 0.5) * scale - 0.5
    position = (jnp.arange(n_image, dtype=jnp.float32)
                - jnp.asarray(offset, jnp.float32)[..., None, None])
    inside = (position >= 0.0) & (position < length)
    # Shrinking stretches the kernel by the scale: the antialiasing.
    weights = jnp.where(inside, _KERNELS[method]((position - center) / jnp.maximum(scale, 1.0)),
                        0.0)
    return weights * (gain / weights.sum(-1, keepdims=True))


def resize_matrices(box, flip, image_hw: tuple[int, int], size: int, method: str):
    """The row [..., size, H] and column [..., size, W] matrices that crop ``box``,
    resize it to ``size`` and mirror it when ``flip``; rows also scale uint8 to [0, 1]."""
    if method not in _KERNELS:
        raise ValueError(f"interpolation must be 'bilinear' or 'bicubic', not {method!r}.")
    rows = axis_matrix(box[..., 0], box[..., 2], image_hw[0], size, method, 1.0 / 255.0)
    columns = axis_matrix(box[..., 1], box[..., 3], image_hw[1], size, method)
    # Reversing the output columns mirrors the view at no extra cost.
    columns = jnp.where(flip[..., None, None], columns[..., ::-1, :], columns)
    return rows, columns


def crop_and_resize(images, rows, columns):
    """uint8 or float ``images`` [B, H, W, C] through per-view matrices [B, V, S, H] and
    [B, V, S', W] -> float32 [B, V, S, S', C], clipped to [0, 1] as torchvision clamps
    bicubic overshoots."""
    x = jnp.einsum("bvih,bhwc->bviwc", rows, images.astype(jnp.float32))
    return jnp.clip(jnp.einsum("bvjw,bviwc->bvijc", columns, x), 0.0, 1.0)


def grey(x):
    """ITU-R 601 luma of float [..., 3] -> [...]."""
    # Three products rather than a contraction over the size-3 axis: XLA:CPU fuses them.
    r, g, b = _GREY_WEIGHTS
    return x[..., 0] * r + x[..., 1] * g + x[..., 2] * b


def _blend(x, coefficients):
    """``clip(a·x + b·grey(x) + c·mean(grey(x)))`` of float [..., H, W, 3] with
    ``coefficients`` [..., 3]: brightness, contrast and saturation are all of this form."""
    a, b, c = (coefficients[..., i, None, None, None] for i in range(3))
    luma = grey(x)[..., None]
    mean = luma.mean(axis=(-3, -2), keepdims=True)
    return jnp.clip(a * x + b * luma + c * mean, 0.0, 1.0)


def _linear_coefficients(op, factor):
    """(a, b, c) of :func:`_blend` for jitter op 0, 1 or 2 (brightness, contrast,
    saturation) with ``factor``: [...] -> [..., 3]."""
    zero = jnp.zeros_like(factor)
    table = jnp.stack([jnp.stack([factor, zero, zero], -1),
                       jnp.stack([factor, zero, 1.0 - factor], -1),
                       jnp.stack([factor, 1.0 - factor, zero], -1)], -2)  # [..., op, 3]
    return jnp.take_along_axis(table, op[..., None, None], -2)[..., 0, :]


def adjust_brightness(x, factor):
    """``clip(x · factor)``; float [..., H, W, 3], factor [...]."""
    return _blend(x, _linear_coefficients(jnp.zeros(jnp.shape(factor), jnp.int32), factor))


def adjust_contrast(x, factor):
    """Blend with the image's mean luma; float [..., H, W, 3], factor [...]."""
    return _blend(x, _linear_coefficients(jnp.ones(jnp.shape(factor), jnp.int32), factor))


def adjust_saturation(x, factor):
    """Blend with the per-pixel luma; float [..., H, W, 3], factor [...]."""
    return _blend(x, _linear_coefficients(jnp.full(jnp.shape(factor), 2, jnp.int32), factor))


def adjust_hue(x, delta):
    """HSV round trip with ``h <- (h + delta) mod 1``, as ``tf.image.adjust_hue``: float
    [..., H, W, 3] in [0, 1], delta [...]."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    value = jnp.maximum(jnp.maximum(r, g), b)
    spread = value - jnp.minimum(jnp.minimum(r, g), b)
    safe_spread = jnp.where(spread > 0, spread, 1.0)
    # Six times the hue, in [0, 6) after the shift; floor and compare rather than
    # jnp.mod, which costs several times more on CPU.
    sector = jnp.where(value == r, (g - b) / safe_spread,
                       jnp.where(value == g, 2.0 + (b - r) / safe_spread,
                                 4.0 + (r - g) / safe_spread))
    hue6 = jnp.where(spread > 0, sector, 0.0) + 6.0 * jnp.asarray(delta)[..., None, None]
    hue6 = hue6 - 6.0 * jnp.floor(hue6 * (1.0 / 6.0))
    chroma = spread  # value · saturation

    def channel(n):  # HSV -> RGB: v − c·clip(min(k, 4 − k), 0, 1), k = (n + 6h) mod 6
        k = n + hue6
        k = jnp.where(k >= 6.0, k - 6.0, k)
        return value - chroma * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)

    return jnp.stack([channel(5.0), channel(3.0), channel(1.0)], -1)


def color_jitter(x, factors, order, gate, hue: bool = True):
    """ColorJitter's four ops on float [..., H, W, 3] in ``order`` with ``factors``
    ([..., 4] each), where ``gate`` [...] is on; ``hue=False`` skips the hue op (strength 0).

    The hue op is the only costly one, so it is computed once: the linear ops ordered
    before it run in three slots ahead of it, those after it in three slots behind it,
    and the unused slots are the identity ``(1, 0, 0)``.
    """
    hue_step = jnp.argmax(order == 3, axis=-1)[..., None]  # [..., 1]
    step = jnp.arange(4)
    linear_op = jnp.minimum(order, 2)  # hue's step is the identity in both halves
    identity = jnp.asarray([1.0, 0.0, 0.0], jnp.float32)
    coefficients = _linear_coefficients(linear_op, jnp.take_along_axis(factors, linear_op, -1))
    used = gate[..., None] & (order != 3)
    before = jnp.where((used & (step < hue_step))[..., None], coefficients, identity)
    after = jnp.where((used & (step > hue_step))[..., None], coefficients, identity)
    # The slots run in loops so that each step's output is materialised: unrolled, XLA
    # fuses the chain into every consumer and the mean of each step recomputes all the
    # steps before it (on CPU, where optimisation barriers are dropped before fusion).
    def run(slots, x):
        return jax.lax.fori_loop(0, 3, lambda k, y: _blend(y, jnp.take(slots, k, axis=-2)), x)

    x = run(before[..., :3, :], x)  # the hue op is never before step 0 nor after step 3
    if hue:
        x = jnp.where(gate[..., None, None, None], adjust_hue(x, factors[..., 3]), x)
    return run(after[..., 1:, :], x)


def random_greyscale(x, gate):
    """The luma in all three channels of float [..., H, W, 3] where ``gate`` [...] is on."""
    return jnp.where(gate[..., None, None, None], grey(x)[..., None], x)


@functools.cache
def _reflect_taps(n: int, radius: int) -> np.ndarray:
    """0/1 [2r + 1, n, n]: tap t of output i reads input i + t − r reflected at the
    borders without repeating the edge, torch's "reflect" padding as augment's blur."""
    if n <= radius:
        raise ValueError(f"views of {n} pixels are too small to blur with a radius of "
                         f"{radius}; turn blurring off with the recipe's blur argument.")
    source = np.abs(np.arange(n)[None, :] + np.arange(-radius, radius + 1)[:, None])
    source = np.where(source > n - 1, 2 * (n - 1) - source, source)
    taps = np.zeros((2 * radius + 1, n, n), np.float32)
    np.put_along_axis(taps, source[..., None], 1.0, axis=-1)
    return taps


def blur_radius(sigma_max: float = _SIGMA[1]) -> int:
    """The kernel radius augment's blur uses for sigmas up to ``sigma_max``."""
    return augment._blur_setup((sigma_max, sigma_max))[2]


def blur_matrix(sigma, gate, n: int, radius: int):
    """[..., n, n]: the normalised Gaussian of ``sigma`` [...] with ``2·radius + 1`` taps
    and reflect padding as a matrix over an axis of ``n`` pixels; the identity where
    ``gate`` is off."""
    taps = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    kernel = jnp.exp(-0.5 * jnp.square(taps / jnp.asarray(sigma)[..., None]))
    kernel = kernel / kernel.sum(-1, keepdims=True)
    kernel = jnp.where(gate[..., None], kernel, jax.nn.one_hot(radius, 2 * radius + 1))
    return jnp.einsum("...t,tij->...ij", kernel, _reflect_taps(n, radius))


def gaussian_blur(x, matrix):
    """Separable blur of square float views [..., S, S, C] by ``matrix`` [..., S, S]
    along both axes."""
    x = jnp.einsum("...ih,...hwc->...iwc", matrix, x)
    return jnp.einsum("...jw,...iwc->...ijc", matrix, x)


def solarize(x, gate):
    """Pixels >= 0.5 become ``1 − x`` where ``gate`` [...] is on; float [..., H, W, C]."""
    return jnp.where(gate[..., None, None, None], jnp.minimum(x, 1.0 - x), x)


def normalize(x, mean, std):
    """Per-channel ``(x − mean) / std`` of float [..., C]."""
    return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


# ---------------------------------------------------------------- recipes


def _defaults(fn) -> dict:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


# recipes._views's own defaults: the jitter and greyscale probabilities.
_VIEW_DEFAULTS = _defaults(recipes._views)


def _views(images, key, num: int, *, size: int, scale, interpolation: str, blur, solarize_p,
           jitter, normalization, grey_p=_VIEW_DEFAULTS["grey"],
           jitter_p=_VIEW_DEFAULTS["jitter_p"], flip=True):
    """recipes._views on a batch: [B, H, W, 3] uint8 -> float32 [B, num, size, size, 3]."""
    augment._check_jitter(*jitter)
    height, width = images.shape[1:3]
    params = sample_views(key, images.shape[0], blur, solarize_p, height=height, width=width,
                          scale=scale, jitter=jitter, jitter_p=jitter_p, grey_p=grey_p)
    rows, columns = resize_matrices(params.box, params.flip & flip, (height, width), size,
                                    interpolation)
    x = crop_and_resize(images, rows, columns)
    if jitter_p and any(jitter):
        x = color_jitter(x, params.factors, params.order, params.jitter, hue=jitter[3] > 0)
    if grey_p:
        x = random_greyscale(x, params.grey)
    if any(blur):
        x = gaussian_blur(x, blur_matrix(params.sigma, params.blur, size, blur_radius()))
    if any(solarize_p):
        x = solarize(x, params.solarize)
    return normalize(x, *normalization)


def _simclr(images, key, *, size, scale, strength, blur, normalization):
    jitter = (0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)
    return {"views": _views(images, key, 2, size=size, scale=scale, interpolation="bilinear",
                            blur=(blur, blur), solarize_p=(0.0, 0.0), jitter=jitter,
                            normalization=normalization)}


def _byol(images, key, *, size, scale, jitter, blur, solarize, interpolation, normalization):
    return {"views": _views(images, key, 2, size=size, scale=scale,
                            interpolation=interpolation, blur=blur, solarize_p=solarize,
                            jitter=jitter, normalization=normalization)}


def _mae(images, key, *, size, scale, flip, normalization):
    # Crop and flip only: one view with every other op off.
    views = _views(images, key, 1, size=size, scale=scale, interpolation="bicubic",
                   blur=(0.0,), solarize_p=(0.0,), jitter=(0.0,) * 4, jitter_p=0.0,
                   grey_p=0.0, normalization=normalization, flip=flip)
    return {"image": views[:, 0]}


# recipes.multicrop's styles: facebookresearch/dino and facebookresearch/swav. (They are
# local to that function; a test checks these against the views it asks for.)
_MULTICROP_STYLES = {
    "dino": dict(jitter=(0.4, 0.4, 0.2, 0.1), interpolation="bicubic", global_blur=(1.0, 0.1),
                 global_solarize=(0.0, 0.2), local_blur=0.5, global_scale=(0.4, 1.0),
                 local_scale=(0.05, 0.4), num_local=8),
    "swav": dict(jitter=(0.8, 0.8, 0.8, 0.2), interpolation="bilinear", global_blur=(0.5, 0.5),
                 global_solarize=(0.0, 0.0), local_blur=0.5, global_scale=(0.14, 1.0),
                 local_scale=(0.05, 0.14), num_local=6),
}


def multicrop_views(*, style, global_size, local_size, num_global, num_local, global_scale,
                    local_scale, blur) -> dict:
    """The views of recipes.multicrop: {output name: (number of views, the other
    arguments of :func:`_views` but the normalisation)}."""
    if style not in _MULTICROP_STYLES:
        raise ValueError(f"multicrop style must be 'dino' or 'swav', not {style!r}.")
    settings = _MULTICROP_STYLES[style]
    global_blur, local_blur = settings["global_blur"], settings["local_blur"]
    if not blur:
        global_blur, local_blur = (0.0, 0.0), 0.0
    num_local = settings["num_local"] if num_local is None else num_local
    common = dict(jitter=settings["jitter"], interpolation=settings["interpolation"])
    # Global view i > 1 is treated as the second one, as in recipes.multicrop.
    views = {"global_views": (num_global, dict(
        common, size=global_size, scale=global_scale or settings["global_scale"],
        blur=[global_blur[min(i, 1)] for i in range(num_global)],
        solarize_p=[settings["global_solarize"][min(i, 1)] for i in range(num_global)]))}
    if num_local:
        views["local_views"] = (num_local, dict(
            common, size=local_size, scale=local_scale or settings["local_scale"],
            blur=[local_blur] * num_local, solarize_p=[0.0] * num_local))
    return views


def _multicrop(images, key, *, style, global_size, local_size, num_global, num_local,
               global_scale, local_scale, blur, normalization):
    views = multicrop_views(style=style, global_size=global_size, local_size=local_size,
                            num_global=num_global, num_local=num_local,
                            global_scale=global_scale, local_scale=local_scale, blur=blur)
    # Split each image's key, so that a view group's draws stay per image.
    keys = jax.vmap(lambda k: jax.random.split(k, len(views)))(
        image_keys(key, images.shape[0]))
    return {name: _views(images, keys[:, i], num, normalization=normalization, **settings)
            for i, (name, (num, settings)) in enumerate(views.items())}


# Each takes exactly the keyword arguments of the tf recipe of its name, without defaults:
# make_device_recipe fills them in from the tf recipe's signature.
DEVICE_RECIPES = {"simclr": _simclr, "byol": _byol, "mae": _mae, "multicrop": _multicrop}


def make_device_recipe(name: str, **kwargs):
    """The recipe ``name`` of :mod:`jax_ssl.data.recipes` as a function ``(images uint8
    [B, H, W, 3], key) -> dict`` of float32 arrays with a leading batch axis, with the
    tf recipe's keyword arguments and defaults. Jittable and vmappable.

    ``key`` is one PRNG key for the batch, or one per image ([B]): then an image's views
    depend only on it and its key, not on the rest of the batch (so not on how a global
    batch is split over devices).
    """
    if name not in DEVICE_RECIPES:
        raise ValueError(f"no device augmentation recipe {name!r}; choose one of "
                         f"{sorted(DEVICE_RECIPES)} (others run in tf.data).")
    defaults = _defaults(recipes.RECIPES[name])
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise ValueError(f"recipe {name!r} has no argument(s) {unknown}; it takes "
                         f"{sorted(defaults)}.")
    return functools.partial(DEVICE_RECIPES[name], **{**defaults, **kwargs})
