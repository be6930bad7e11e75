"""timm's RandAugment and RandomErasing as TensorFlow graph ops (the MAE fine-tuning recipe).

facebookresearch/mae ``main_finetune.py`` builds its train transform with timm's
``create_transform(auto_augment='rand-m9-mstd0.5-inc1', interpolation='bicubic',
re_prob=0.25, re_mode='pixel', re_count=1)``: after the crop and flip, :func:`rand_augment`
(two ops of ``_RAND_INCREASING_TRANSFORMS``, each applied with probability 0.5 at a
magnitude ``~ N(9, 0.5)`` clipped to [0, 10]), then normalisation, then
:func:`random_erasing`. Every function is a graph op usable inside
``tf.data.Dataset.map``; randomness is stateless as in :mod:`jax_ssl.data.augment`.

timm applies the ops to PIL images, so the ops below work on "levels": float32
``[H, W, 3]`` holding the integers 0..255 of the uint8 image, and follow PIL's uint8
arithmetic (truncating casts, ``Image.blend``, the ``convert("L")`` fixed-point luma,
the 3x3 SMOOTH filter, the a = -1 cubic of ``Image.transform``), matching PIL 13 pixel
for pixel. One deviation: PosterizeIncreasing at magnitude 10 keeps 0 bits, which older
PIL (and TF's RandAugment) turn black but PIL >= 10 rejects with a ValueError; here it
is black.
"""
from __future__ import annotations

import math
import numbers

import tensorflow as tf

from jax_ssl.data.augment import _apply_with_prob, _seed, _split, _to_float

# timm create_transform's fill of the affine ops: img_mean = round(255 · ImageNet mean).
FILL = (124, 116, 104)
_MAX_LEVEL = 10.0  # timm _LEVEL_DENOM: magnitudes are clipped to [0, 10]

# timm _RAND_INCREASING_TRANSFORMS ('inc1') and _RAND_TRANSFORMS, in timm's order.
RAND_INCREASING_TRANSFORMS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
    "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
    "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel",
    "TranslateYRel")
RAND_TRANSFORMS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
    "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
    "TranslateYRel")


def _f64(value):
    """float64 tensor; a Python float goes straight to float64 (tf.cast would round it
    through float32 first, moving PIL's sample positions)."""
    if tf.is_tensor(value):
        return tf.cast(value, tf.float64)
    return tf.convert_to_tensor(value, tf.float64)


def to_levels(image):
    """uint8, or float in [0, 1] rounded to the nearest uint8 value: -> float32 [H, W, 3]
    of integers in [0, 255] (timm augments the uint8 PIL image the crop produced)."""
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32)
    return tf.round(tf.clip_by_value(_to_float(image), 0.0, 1.0) * 255.0)


# ------------------------------------------------------------------- PIL pixel ops
# All take and return levels, float32 [H, W, 3] of integers in [0, 255].


def _blend(degenerate, x, factor):
    """PIL ``Image.blend(degenerate, x, factor)``, the ImageEnhance ops' last step.

    ``degenerate + factor · (x - degenerate)`` in float32 (PIL's C float), clipped
    and truncated to uint8.
    """
    factor = tf.cast(factor, tf.float32)
    return tf.floor(tf.clip_by_value(degenerate + factor * (x - degenerate), 0.0, 255.0))


def _luma(x):
    """PIL ``convert("L")``: (19595 R + 38470 G + 7471 B + 2^15) >> 16, [H, W, 3] -> [H, W, 1]."""
    weights = tf.constant([[19595], [38470], [7471]], tf.int32)
    rgb = tf.reshape(tf.cast(x, tf.int32), [-1, 3])
    luma = tf.bitwise.right_shift(tf.matmul(rgb, weights) + 32768, 16)
    return tf.cast(tf.reshape(luma, tf.concat([tf.shape(x)[:2], [1]], 0)), tf.float32)


def auto_contrast(x):
    """``ImageOps.autocontrast``: each channel stretched so its min -> 0 and max -> 255."""
    lo = tf.cast(tf.reduce_min(x, axis=[0, 1]), tf.float64)
    hi = tf.cast(tf.reduce_max(x, axis=[0, 1]), tf.float64)
    scale = 255.0 / tf.maximum(hi - lo, 1.0)
    # int() of PIL's float64 LUT; floor equals it wherever the clip does not.
    out = tf.clip_by_value(tf.floor(tf.cast(x, tf.float64) * scale - lo * scale), 0.0, 255.0)
    return tf.where(hi > lo, tf.cast(out, tf.float32), x)  # a constant channel is kept


def equalize(x):
    """``ImageOps.equalize``: per channel, LUT ``(step // 2 + #pixels below v) // step``
    with ``step = (#pixels - #pixels at the top value) // 255``; identity if step is 0."""
    values = tf.cast(x, tf.int32) + tf.constant([0, 256, 512])  # one bin range per channel
    hist = tf.reshape(tf.math.bincount(tf.reshape(values, [-1]), minlength=768,
                                       maxlength=768), [3, 256])
    top = tf.cast(tf.reduce_max(x, axis=[0, 1]), tf.int32)
    step = (tf.reduce_sum(hist, 1) - tf.gather(hist, top, batch_dims=1)) // 255  # [3]
    safe = tf.maximum(step, 1)[:, None]
    lut = (safe // 2 + tf.cumsum(hist, axis=1, exclusive=True)) // safe
    # PIL's point() stores the LUT as uint8, clipping its entries.
    lut = tf.where(step[:, None] > 0, tf.minimum(lut, 255), tf.range(256)[None])
    return tf.cast(tf.gather(tf.reshape(lut, [-1]), values), tf.float32)


def invert(x):
    """``ImageOps.invert``: 255 - x."""
    return 255.0 - x


def posterize(x, bits):
    """``ImageOps.posterize``: keep the top ``bits`` (0..8) bits of each value."""
    unit = tf.pow(2.0, 8.0 - tf.cast(bits, tf.float32))
    return tf.floor(x / unit) * unit


def solarize(x, threshold):
    """``ImageOps.solarize``: values >= ``threshold`` become 255 - x."""
    return tf.where(x < tf.cast(threshold, tf.float32), x, 255.0 - x)


def solarize_add(x, addition, threshold=128):
    """timm ``solarize_add``: values below ``threshold`` get ``+ addition``, capped at 255."""
    added = tf.minimum(x + tf.cast(addition, tf.float32), 255.0)
    return tf.where(x < tf.cast(threshold, tf.float32), added, x)


def color(x, factor):
    """``ImageEnhance.Color``: blend with the greyscale image."""
    return _blend(_luma(x), x, factor)


def contrast(x, factor):
    """``ImageEnhance.Contrast``: blend with the mean grey level, rounded to an integer."""
    mean = tf.reduce_mean(tf.cast(_luma(x), tf.float64))
    return _blend(tf.cast(tf.floor(mean + 0.5), tf.float32), x, factor)


def brightness(x, factor):
    """``ImageEnhance.Brightness``: blend with black."""
    return _blend(tf.zeros_like(x), x, factor)


def sharpness(x, factor):
    """``ImageEnhance.Sharpness``: blend with PIL's SMOOTH filter of ``x``.

    SMOOTH is the 3x3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13, rounded to the
    nearest integer, on the interior; PIL leaves the one-pixel border unfiltered.
    """
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32)
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    total = tf.nn.depthwise_conv2d(x[None], kernel, [1, 1, 1, 1], "SAME")[0]
    # PIL adds 0.5 and truncates. The sums are exact integers and total/13 is never within
    # 1/26 of a half, so float32 rounding cannot move a result across one.
    smooth = tf.floor(total / 13.0 + 0.5)
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    rows, cols = tf.range(h)[:, None, None], tf.range(w)[None, :, None]
    interior = (rows > 0) & (rows < h - 1) & (cols > 0) & (cols < w - 1)
    return _blend(tf.where(interior, smooth, x), x, factor)


def _cubic_terms(v1, v2, v3, v4):
    """PIL's BICUBIC macro (Keys' cubic with a = -1) through v1..v4 as its Horner terms:
    the value at offset d past v2 is ``v2 + d (p2 + d (p3 + d p4))``."""
    return v2, -v1 + v3, 2.0 * (v1 - v2) + v3 - v4, -v1 + v2 - v3 + v4


def _linear_terms(v1, v2):
    """PIL's BILINEAR macro: ``v1 + (v2 - v1) d``."""
    return v1, v2 - v1


def _horner(terms, d):
    value = terms[-1]
    for term in reversed(terms[:-1]):
        value = term + d * value
    return value


def affine(x, matrix, fill=FILL, interpolation="bicubic"):
    """PIL ``Image.transform(size, Image.AFFINE, matrix, resample, fillcolor=fill)``.

    Output pixel (row i, column j) samples the input at column ``a (j+½) + b (i+½) + c``,
    row ``d (j+½) + e (i+½) + f`` (float64, as PIL): a sample outside the image takes
    ``fill``; inside, PIL's bilinear or bicubic (a = -1) interpolation with edge pixels
    repeated — along the rows, then across them, in PIL's order of float64 operations —
    clipped and truncated to uint8.

    Args:
      x: levels, float32 [H, W, 3].
      matrix: (a, b, c, d, e, f), Python floats or float64 scalar tensors.
      fill: 3 uint8 values. interpolation: "bilinear" or "bicubic".
    Returns:
      levels, float32 [H, W, 3].
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolation must be 'bilinear' or 'bicubic', not {interpolation!r}.")
    cubic = interpolation == "bicubic"

    def axis_kernel(row):  # (taps, terms) along an axis; one tap if it maps pixels onto pixels
        if all(isinstance(m, numbers.Real) and m == n for m, n in zip(row, (1, 0, 0), strict=True)):
            return (0,), lambda v: (v,)  # offset 0: PIL's polynomial returns the pixel
        return ((-1, 0, 1, 2), _cubic_terms) if cubic else ((0, 1), _linear_terms)

    x_taps, x_terms = axis_kernel(matrix[:3])
    y_taps, y_terms = axis_kernel((matrix[4], matrix[3], matrix[5]))
    a, b, c, d, e, f = (_f64(m) for m in matrix)
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    cols = tf.cast(tf.range(w), tf.float64)[None, :] + 0.5
    rows = tf.cast(tf.range(h), tf.float64)[:, None] + 0.5
    u = a * cols + b * rows + c  # [H, W] input column coordinate
    v = d * cols + e * rows + f
    inside = (u >= 0.0) & (u < tf.cast(w, tf.float64)) & (v >= 0.0) & (v < tf.cast(h, tf.float64))
    u, v = u - 0.5, v - 0.5  # to pixel-index coordinates
    u0, v0 = tf.floor(u), tf.floor(v)
    du, dv = u - u0, v - v0

    # Along a row, the terms are integer combinations of uint8 values, exact in float32:
    # tabulate them for every row and start column x0 in [-1, W-1] (edge columns
    # repeated), then gather one entry per tap row rather than every tap pixel.
    padded = tf.gather(x, tf.clip_by_value(tf.range(-2, w + 2), 0, w - 1), axis=1)
    table = tf.stack(x_terms(*[padded[:, t + 1:t + 2 + w] for t in x_taps]), axis=2)
    table = tf.reshape(table, [h * (w + 1), -1])  # [H · (W+1), terms · 3]
    iy = tf.clip_by_value(tf.cast(v0, tf.int32)[..., None] + y_taps, 0, h - 1)  # [H, W, T]
    ix = tf.clip_by_value(tf.cast(u0, tf.int32), -1, w - 1)[..., None] + 1
    row_terms = tf.reshape(tf.gather(table, iy * (w + 1) + ix), [h, w, len(y_taps), len(x_taps), 3])
    row_terms = [tf.cast(t, tf.float64) for t in tf.unstack(row_terms, axis=3)]
    row_values = _horner(row_terms, du[..., None, None])  # [H, W, T, 3]
    value = _horner(y_terms(*tf.unstack(row_values, axis=2)), dv[..., None])  # [H, W, 3]
    value = tf.cast(tf.floor(tf.clip_by_value(value, 0.0, 255.0)), tf.float32)
    return tf.where(inside[..., None], value, tf.constant(fill, tf.float32))


def _round15(t):
    return tf.round(t * 1e15) / 1e15  # Python's round(t, 15), as PIL's rotate


def rotate(x, degrees, fill=FILL, interpolation="bicubic"):
    """PIL ``Image.rotate(degrees, resample, fillcolor=fill)``: anticlockwise about the
    centre ``(W/2, H/2)``, same size. [H, W, 3] -> [H, W, 3]."""
    angle = -tf.math.floormod(_f64(degrees), 360.0) * (math.pi / 180.0)
    cos, sin = _round15(tf.cos(angle)), _round15(tf.sin(angle))
    size = tf.cast(tf.shape(x)[:2], tf.float64)
    cx, cy = size[1] / 2.0, size[0] / 2.0
    matrix = (cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy)
    return affine(x, matrix, fill, interpolation)


def _size(x, axis):
    return tf.cast(tf.shape(x)[axis], tf.float64)


def shear_x(x, factor, fill=FILL, interpolation="bicubic"):
    """timm ``shear_x``: input column ``j + factor · i`` (about the top-left corner)."""
    return affine(x, (1.0, factor, 0.0, 0.0, 1.0, 0.0), fill, interpolation)


def shear_y(x, factor, fill=FILL, interpolation="bicubic"):
    """timm ``shear_y``: input row ``i + factor · j``."""
    return affine(x, (1.0, 0.0, 0.0, factor, 1.0, 0.0), fill, interpolation)


def translate_x_rel(x, fraction, fill=FILL, interpolation="bicubic"):
    """timm ``translate_x_rel``: input column ``j + fraction · W`` (content moves left)."""
    pixels = _f64(fraction) * _size(x, 1)
    return affine(x, (1.0, 0.0, pixels, 0.0, 1.0, 0.0), fill, interpolation)


def translate_y_rel(x, fraction, fill=FILL, interpolation="bicubic"):
    """timm ``translate_y_rel``: input row ``i + fraction · H`` (content moves up)."""
    pixels = _f64(fraction) * _size(x, 0)
    return affine(x, (1.0, 0.0, 0.0, 0.0, 1.0, pixels), fill, interpolation)


# -------------------------------------------------------- timm's level -> argument rules
# ``m`` is the clipped magnitude (float64 scalar, 0..10) and ``neg`` timm's
# _randomly_negate coin; int() of timm's non-negative floats is floor.


def _signed(value, neg):
    return tf.where(neg, -value, value)


def _enhance_increasing(m, neg):
    return tf.maximum(1.0 + _signed(m / _MAX_LEVEL * 0.9, neg), 0.1)  # in [0.1, 1.9]


def _enhance(m, _):
    return m / _MAX_LEVEL * 1.8 + 0.1


def _solarize_threshold(m):
    return tf.minimum(tf.floor(m / _MAX_LEVEL * 256.0), 256.0)


# name -> fn(levels, m, neg, fill, interpolation)
_OPS = {
    "AutoContrast": lambda x, m, neg, *_: auto_contrast(x),
    "Equalize": lambda x, m, neg, *_: equalize(x),
    "Invert": lambda x, m, neg, *_: invert(x),
    "Rotate": lambda x, m, neg, *k: rotate(x, _signed(m / _MAX_LEVEL * 30.0, neg), *k),
    "Posterize": lambda x, m, neg, *_: posterize(x, tf.floor(m / _MAX_LEVEL * 4.0)),
    "PosterizeIncreasing": lambda x, m, neg, *_: posterize(
        x, 4.0 - tf.floor(m / _MAX_LEVEL * 4.0)),
    "Solarize": lambda x, m, neg, *_: solarize(x, _solarize_threshold(m)),
    "SolarizeIncreasing": lambda x, m, neg, *_: solarize(x, 256.0 - _solarize_threshold(m)),
    "SolarizeAdd": lambda x, m, neg, *_: solarize_add(
        x, tf.minimum(tf.floor(m / _MAX_LEVEL * 110.0), 128.0)),
    "Color": lambda x, m, neg, *_: color(x, _enhance(m, neg)),
    "ColorIncreasing": lambda x, m, neg, *_: color(x, _enhance_increasing(m, neg)),
    "Contrast": lambda x, m, neg, *_: contrast(x, _enhance(m, neg)),
    "ContrastIncreasing": lambda x, m, neg, *_: contrast(x, _enhance_increasing(m, neg)),
    "Brightness": lambda x, m, neg, *_: brightness(x, _enhance(m, neg)),
    "BrightnessIncreasing": lambda x, m, neg, *_: brightness(x, _enhance_increasing(m, neg)),
    "Sharpness": lambda x, m, neg, *_: sharpness(x, _enhance(m, neg)),
    "SharpnessIncreasing": lambda x, m, neg, *_: sharpness(x, _enhance_increasing(m, neg)),
    "ShearX": lambda x, m, neg, *k: shear_x(x, _signed(m / _MAX_LEVEL * 0.3, neg), *k),
    "ShearY": lambda x, m, neg, *k: shear_y(x, _signed(m / _MAX_LEVEL * 0.3, neg), *k),
    "TranslateXRel": lambda x, m, neg, *k: translate_x_rel(
        x, _signed(m / _MAX_LEVEL * 0.45, neg), *k),
    "TranslateYRel": lambda x, m, neg, *k: translate_y_rel(
        x, _signed(m / _MAX_LEVEL * 0.45, neg), *k),
}


def apply_op(image, name, magnitude, negate=False, *, fill=FILL, interpolation="bicubic"):
    """timm's ``AugmentOp(name)`` at a given (already clipped) magnitude, always applied.

    Args:
      image: uint8 or float in [0, 1], [H, W, 3].
      name: a timm op name of :data:`RAND_INCREASING_TRANSFORMS` or :data:`RAND_TRANSFORMS`.
      magnitude: the level in [0, 10]. negate: timm's ``_randomly_negate`` outcome
        (rotate, shear, translate, and the increasing enhance ops).
    Returns:
      float32 [H, W, 3] in [0, 1], a multiple of 1/255.
    """
    m = _f64(magnitude)
    return _OPS[name](to_levels(image), m, tf.cast(negate, tf.bool), fill, interpolation) / 255.0


def rand_augment_params(seed, *, num_layers=2, magnitude=9, magnitude_std=0.5, prob=0.5,
                        num_ops=15):
    """The draws :func:`rand_augment` makes from the same ``seed``, per layer.

    timm ``RandAugment``: ``np.random.choice(ops, num_layers, replace=True)``; each
    ``AugmentOp`` runs with probability ``prob`` at magnitude ``random.gauss(magnitude,
    magnitude_std)`` (``uniform(0, magnitude)`` if ``magnitude_std`` is inf, timm's
    'mstd' over 100) clipped to [0, 10], and negates its argument with probability 1/2.

    Returns:
      dict of [num_layers] tensors: ``op`` int32 index into the op list, ``applied`` bool,
      ``magnitude`` float64 in [0, 10], ``negate`` bool.
    """
    choice_seed, gate_seed, level_seed, sign_seed = _split(_seed(seed), 4)
    shape = [num_layers]
    if math.isinf(magnitude_std):
        level = tf.random.stateless_uniform(shape, level_seed, 0.0, magnitude, tf.float64)
    else:
        level = magnitude + magnitude_std * tf.random.stateless_normal(
            shape, level_seed, dtype=tf.float64)
    return {
        "op": tf.random.stateless_uniform(shape, choice_seed, 0, num_ops, tf.int32),
        "applied": tf.random.stateless_uniform(shape, gate_seed) < prob,
        "magnitude": tf.clip_by_value(level, 0.0, _MAX_LEVEL),
        "negate": tf.random.stateless_uniform(shape, sign_seed) < 0.5,
    }


def rand_augment(image, seed, *, num_layers=2, magnitude=9, magnitude_std=0.5, prob=0.5,
                 increasing=True, fill=FILL, interpolation="bicubic"):
    """timm ``rand_augment_transform('rand-m9-mstd0.5-inc1')`` (MAE fine-tuning).

    ``num_layers`` ops drawn uniformly with replacement from
    :data:`RAND_INCREASING_TRANSFORMS` (:data:`RAND_TRANSFORMS` if not ``increasing``),
    each applied with probability ``prob``; draws of :func:`rand_augment_params`.

    Args:
      image: uint8, or float32 in [0, 1] (rounded to uint8 values first), [H, W, 3].
      seed: int32/int64 [2].
      fill: the uint8 colour the affine ops fill in (timm's ``img_mean``).
      interpolation: of the affine ops, "bicubic" (MAE) or "bilinear".
    Returns:
      float32 [H, W, 3] in [0, 1], multiples of 1/255.
    """
    names = RAND_INCREASING_TRANSFORMS if increasing else RAND_TRANSFORMS
    params = rand_augment_params(seed, num_layers=num_layers, magnitude=magnitude,
                                 magnitude_std=magnitude_std, prob=prob, num_ops=len(names))
    x = to_levels(image)
    shape = x.shape
    for layer in range(num_layers):
        args = (params["magnitude"][layer], params["negate"][layer], fill, interpolation)
        branches = [lambda x=x, op=_OPS[n], args=args: op(x, *args) for n in names]
        branches.append(lambda x=x: x)  # the op's coin said no
        # Only the selected branch runs: tf.switch_case lowers to a Case op.
        index = tf.where(params["applied"][layer], params["op"][layer], len(names))
        x = tf.switch_case(index, branches)
        x.set_shape(shape)  # the affine branches' reshapes lose the static shape
    return x / 255.0


# ----------------------------------------------------------------------- random erasing


def _erasing_boxes(height, width, seed, count, scale, ratio):
    """timm ``RandomErasing._erase``'s ``count`` boxes: per box, 10 candidates of area
    ``U(scale) · H · W / count`` and log-uniform aspect ``h / w``, ``h = round(sqrt(area · r))``,
    ``w = round(sqrt(area / r))``; the first with ``h < H`` and ``w < W`` wins, at uniform
    integer offsets. Returns int32 [count, 4] (top, left, h, w) and bool [count] found."""
    area_seed, ratio_seed, offset_seed = _split(seed, 3)
    h_f, w_f = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    area = tf.random.stateless_uniform([count, 10], area_seed, scale[0], scale[1],
                                       tf.float64) * h_f * w_f / count
    aspect = tf.exp(tf.random.stateless_uniform([count, 10], ratio_seed, math.log(ratio[0]),
                                                math.log(ratio[1]), tf.float64))
    hs = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)  # round half to even, as Python
    ws = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    valid = (hs < height) & (ws < width)
    first = tf.argmax(tf.cast(valid, tf.int32), axis=1, output_type=tf.int32)[:, None]
    size = tf.concat([tf.gather(hs, first, batch_dims=1), tf.gather(ws, first, batch_dims=1)], 1)
    room = tf.stack([height, width]) - size  # randint(0, room), both ends included
    uniform = tf.random.stateless_uniform([count, 2], offset_seed, dtype=tf.float64)
    offset = tf.cast(tf.floor(uniform * tf.cast(room + 1, tf.float64)), tf.int32)
    return tf.concat([offset, size], 1), tf.reduce_any(valid, axis=1)


def random_erasing(image, seed, *, probability=0.25, mode="pixel", count=1,
                   scale=(0.02, 1 / 3), ratio=(0.3, 1 / 0.3)):
    """timm ``RandomErasing(probability, mode=mode, max_count=count)``, after normalisation.

    With probability ``probability``, ``randint(1, count)`` boxes (:func:`_erasing_boxes`;
    a box none of whose 10 candidates fits is skipped) are filled with per-pixel standard
    normal noise (``mode`` "pixel"), one normal colour per box ("rand") or 0 ("const").

    Args:
      image: float32 [H, W, C] (normalised). seed: int32/int64 [2].
      scale: (min, max) box area as a fraction of the image (split over the boxes).
      ratio: (min, max) aspect ratio h / w (timm: min_aspect 0.3, max 1 / 0.3).
    Returns:
      float32 [H, W, C].
    """
    if mode not in ("pixel", "rand", "const"):
        raise ValueError(f"mode must be 'pixel', 'rand' or 'const', not {mode!r}.")
    gate_seed, count_seed, box_seed, noise_seed = _split(_seed(seed), 4)
    image = _to_float(image)

    def erase(x):
        shape = tf.shape(x)
        boxes, found = _erasing_boxes(shape[0], shape[1], box_seed, count, scale, ratio)
        num = tf.random.stateless_uniform([], count_seed, 1, count + 1, tf.int32)
        rows, cols = tf.range(shape[0])[:, None], tf.range(shape[1])[None, :]
        for i, s in enumerate(_split(noise_seed, count)):
            top, left, h, w = tf.unstack(boxes[i])
            inside = ((rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
                      & found[i] & (i < num))
            if mode == "pixel":
                noise = tf.random.stateless_normal(shape, s)
            elif mode == "rand":
                noise = tf.random.stateless_normal(shape[2:], s)
            else:
                noise = tf.zeros([], tf.float32)
            x = tf.where(inside[..., None], noise, x)
        return x

    return _apply_with_prob(probability, gate_seed, erase, image)
