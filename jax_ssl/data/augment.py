"""Image augmentations as TensorFlow ops with torchvision's semantics (DESIGN.md §6).

Every function is a graph op usable inside ``tf.data.Dataset.map`` (no ``py_function``).
Images are ``[H, W, 3]``: :func:`random_resized_crop` and :func:`center_crop_eval` take
uint8 (scaled by 1/255) or float32 in [0, 1] and return float32 in [0, 1]; every
function after the crop works on float32 in [0, 1].

Randomness is stateless: each random function takes ``seed``, an int32/int64 tensor
of shape [2], and derives its sub-seeds with ``stateless_split``, so the output is a
pure function of ``(image, seed)`` whatever tf.data's parallelism. The official SSL
code (dino, moco-v3, swav, mae) augments with torchvision; the parameter sampling and
the pixel arithmetic below follow torchvision's ``RandomResizedCrop``, ``ColorJitter``
(on float tensors), ``RandomGrayscale``, ``GaussianBlur`` and ``RandomSolarize``.

Probability-gated functions take ``p`` as a Python number or a scalar tensor; a Python
0 or 1 is resolved when tracing, and otherwise ``tf.cond`` skips the expensive branch
for examples that do not get it, since augmentation is the host-CPU bottleneck.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import tensorflow as tf

from jax_ssl.data import resample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ITU-R 601-2 luma, as PIL's convert("L") and the PIL-image transforms of the official code.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_CROP_ATTEMPTS = 10  # torchvision RandomResizedCrop.get_params


def _split(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _seed(seed):
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        seed = tf.cast(seed, tf.int64)
    return seed


def _to_float(image):
    """uint8 -> float32 in [0, 1]; float32 passes through untouched (no copy)."""
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        return tf.cast(image, tf.float32) * (1.0 / 255.0)
    if image.dtype != tf.float32:
        return tf.cast(image, tf.float32)
    return image


def _size_pair(size):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _apply_with_prob(p, seed, fn, image):
    """``fn(image)`` with probability ``p`` (torchvision: applied iff ``rand() < p``)."""
    if isinstance(p, numbers.Real):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {p}.")
        if p == 0:
            return image
        if p == 1:
            return fn(image)
    u = tf.random.stateless_uniform([], seed, dtype=tf.float32)
    return tf.cond(u < tf.cast(p, tf.float32), lambda: fn(image), lambda: image)


def _color_matmul(image, matrix):
    """``out[..., d] = sum_c image[..., c] · matrix[c, d]``: [H, W, 3] -> [H, W, D]."""
    # A [H·W, 3] x [3, D] matmul is several times faster on CPU than broadcasting
    # over the size-3 channel axis (mul + reduce_sum + tile).
    out = tf.matmul(tf.reshape(image, [-1, 3]), matrix)
    return tf.reshape(out, tf.concat([tf.shape(image)[:-1], tf.shape(matrix)[1:]], 0))


def _gray_matrix():
    # Every output channel is the luma: the columns are the grey weights.
    return tf.constant([[w] * 3 for w in _GRAY_WEIGHTS], tf.float32)


def rgb_to_grayscale(image):
    """Luma 0.299 R + 0.587 G + 0.114 B: float32 [H, W, 3] -> [H, W, 1]."""
    return _color_matmul(image, tf.constant([[w] for w in _GRAY_WEIGHTS], tf.float32))


# ---------------------------------------------------------------------------- crops


def resized_crop_boxes(height, width, seed, num, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """``num`` independent crop boxes of torchvision ``RandomResizedCrop.get_params``.

    Per box, ten candidates are drawn at once (area ``U(scale)·H·W``, log-uniform aspect
    ratio, ``w = round(sqrt(area·r))``, ``h = round(sqrt(area/r))``) and the first with
    ``0 < w <= W`` and ``0 < h <= H`` wins, with uniform integer offsets. If none fits,
    the centre crop of the whole image with its aspect ratio clamped to ``ratio``. All
    boxes are drawn by one set of ops: per-box graphs cost more than the draws.

    Args:
      height, width: the image size (Python ints or int scalar tensors).
      seed: int32/int64 [2]. num: Python int.
      scale, ratio: (min, max) area fraction and width/height ratio.
    Returns:
      int32 [num, 4]: (top, left, h, w) per box.
    """
    if not (scale[0] <= scale[1] and ratio[0] <= ratio[1]):
        raise ValueError(f"scale {scale} and ratio {ratio} must be (min, max) pairs.")
    area_seed, ratio_seed, offset_seed = _split(_seed(seed), 3)
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    # float64, as torchvision's Python-float arithmetic, so round() ties agree.
    h_f = tf.cast(height, tf.float64)
    w_f = tf.cast(width, tf.float64)
    target_area = h_f * w_f * tf.random.stateless_uniform(
        [num, _CROP_ATTEMPTS], area_seed, minval=scale[0], maxval=scale[1], dtype=tf.float64)
    aspect = tf.exp(tf.random.stateless_uniform(
        [num, _CROP_ATTEMPTS], ratio_seed, minval=math.log(ratio[0]),
        maxval=math.log(ratio[1]), dtype=tf.float64))
    # tf.round rounds half to even, like Python's round().
    ws = tf.cast(tf.round(tf.sqrt(target_area * aspect)), tf.int32)
    hs = tf.cast(tf.round(tf.sqrt(target_area / aspect)), tf.int32)
    valid = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = tf.argmax(tf.cast(valid, tf.int32), axis=1, output_type=tf.int32)[:, None]

    in_ratio = w_f / h_f
    fb_w = tf.where(in_ratio > ratio[1], tf.cast(tf.round(h_f * ratio[1]), tf.int32), width)
    fb_h = tf.where(in_ratio < ratio[0], tf.cast(tf.round(w_f / ratio[0]), tf.int32), height)

    found = tf.reduce_any(valid, axis=1)
    size = tf.where(found[:, None],
                    tf.concat([tf.gather(hs, first, batch_dims=1),
                               tf.gather(ws, first, batch_dims=1)], 1),
                    tf.stack([fb_h, fb_w])[None])  # [num, 2]: (h, w)
    room = tf.stack([height, width]) - size  # top and left in [0, room], as randint
    uniform = tf.random.stateless_uniform([num, 2], offset_seed, dtype=tf.float64)
    drawn = tf.cast(tf.floor(uniform * tf.cast(room + 1, tf.float64)), tf.int32)
    offset = tf.where(found[:, None], drawn, room // 2)
    return tf.concat([offset, size], 1)


def resized_crop_box(height, width, seed, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """One box of :func:`resized_crop_boxes`: (top, left, h, w) int32 scalars."""
    return tuple(tf.unstack(resized_crop_boxes(height, width, seed, 1, scale, ratio)[0]))


def random_resized_crops(image, seed, num, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                         method="bilinear"):
    """``num`` views of torchvision ``RandomResizedCrop``: [H, W, 3] -> float32
    [num, size, size, 3].

    The boxes are :func:`resized_crop_boxes` of ``seed``; the crops are resized with
    the antialiased kernels of ``tf.image.resize(antialias=True)`` and PIL (``method``
    "bilinear" or "bicubic"; :mod:`jax_ssl.data.resample`) and clipped to [0, 1], as
    torchvision clamps bicubic overshoots.

    Args:
      image: uint8 (scaled by 1/255) or float32 in [0, 1], [H, W, 3].
      seed: int32/int64 [2]; num: Python int.
      size: an int or an (height, width) pair.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.float32):
        image = _to_float(image)
    shape = tf.shape(image)
    boxes = resized_crop_boxes(shape[0], shape[1], seed, num, scale, ratio)
    gain = 1.0 / 255.0 if image.dtype == tf.uint8 else 1.0
    size = _size_pair(size)
    views = resample.crop_and_resize(image, boxes, size, method, gain)
    views = tf.clip_by_value(views, 0.0, 1.0)
    views.set_shape([num, size[0], size[1], 3])
    return views


def random_resized_crop(image, seed, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        method="bilinear"):
    """torchvision ``RandomResizedCrop``: one view of :func:`random_resized_crops`.

    uint8/float [H, W, 3] -> float32 [size, size, 3]; ``size`` may also be an
    (height, width) pair.
    """
    return random_resized_crops(image, seed, 1, size, scale, ratio, method)[0]


def center_crop_eval(image, size, resize_size=None, method="bilinear"):
    """The eval transform ``Resize(resize_size)`` + ``CenterCrop(size)`` of torchvision.

    The shorter side is resized to ``resize_size`` (default ``round(size / 0.875)``,
    256 for 224; the longer side to ``int(resize_size · long / short)``), antialiased,
    then the central ``size × size`` square is cut out.

    Args:
      image: uint8 or float32 [H, W, 3].
    Returns:
      float32 [size, size, 3] in [0, 1].
    """
    if resize_size is None:
        resize_size = int(round(size / 0.875))
    if resize_size < size:
        raise ValueError(f"resize_size {resize_size} is smaller than the crop {size}.")
    image = tf.convert_to_tensor(image)
    if image.dtype not in (tf.uint8, tf.float32):
        image = _to_float(image)
    if image.shape[:2].is_fully_defined() and min(image.shape[:2]) == resize_size:
        # Already at the size (28 px Fashion-MNIST at 28): resizing would copy it.
        new_hw = tf.constant(image.shape[:2].as_list(), tf.int32)
        resized = tf.cast(image, tf.float32)
    else:
        shape = tf.cast(tf.shape(image)[:2], tf.float64)
        short = tf.reduce_min(shape)
        # int() truncation of torchvision's _compute_resized_output_size.
        new_hw = tf.cast(tf.where(shape == short, tf.constant(resize_size, tf.float64),
                                  tf.floor(resize_size * shape / short)), tf.int32)
        resized = tf.image.resize(image, new_hw, method=method, antialias=True)
    # torchvision CenterCrop: int(round((H - size) / 2)), half to even.
    offsets = tf.cast(tf.round(tf.cast(new_hw - size, tf.float64) / 2.0), tf.int32)
    out = tf.slice(resized, tf.stack([offsets[0], offsets[1], 0]), [size, size, 3])
    if image.dtype == tf.uint8:
        out = out * (1.0 / 255.0)
    out = tf.clip_by_value(out, 0.0, 1.0)
    out.set_shape([size, size, 3])
    return out


# ------------------------------------------------------------------ flips and colour


def horizontal_flip(image, seed, p=0.5):
    """torchvision ``RandomHorizontalFlip``: [H, W, C] mirrored along W with prob. ``p``."""
    return _apply_with_prob(p, _seed(seed), lambda x: tf.reverse(x, axis=[1]),
                            tf.convert_to_tensor(image))


def _blend(x, other, factor):
    # torchvision _blend: (ratio * img1 + (1 - ratio) * img2).clamp(0, 1)
    return tf.clip_by_value(factor * x + (1.0 - factor) * other, 0.0, 1.0)


def adjust_brightness(image, factor):
    """``clip(x · factor)``: float32 [H, W, 3] -> [H, W, 3]."""
    return tf.clip_by_value(image * factor, 0.0, 1.0)


def adjust_contrast(image, factor):
    """Blend with the scalar mean of the grayscale image: [H, W, 3] -> [H, W, 3]."""
    # mean(gray(x)) = gray(per-channel mean of x): reduce first, then a 3-vector dot.
    mean = tf.tensordot(tf.reduce_mean(image, axis=[0, 1]),
                        tf.constant(_GRAY_WEIGHTS, tf.float32), 1)
    return _blend(image, mean, factor)


def adjust_saturation(image, factor):
    """Blend with the grayscale image: [H, W, 3] -> [H, W, 3]."""
    # s·x + (1 - s)·gray(x) is linear in x: one 3 x 3 colour matrix.
    matrix = factor * tf.eye(3) + (1.0 - factor) * _gray_matrix()
    return tf.clip_by_value(_color_matmul(image, matrix), 0.0, 1.0)


def adjust_hue(image, delta):
    """Rotate the HSV hue by ``delta`` (a fraction of the circle): [H, W, 3] -> [H, W, 3]."""
    # The fused AdjustHue kernel is an HSV round trip with h = (h + delta) mod 1,
    # what torchvision's adjust_hue does on float tensors.
    return tf.image.adjust_hue(image, delta)


def _check_jitter(brightness, contrast, saturation, hue):
    for name, v in (("brightness", brightness), ("contrast", contrast),
                    ("saturation", saturation)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}.")
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5], got {hue}.")


def color_jitter_params(seed, brightness, contrast, saturation, hue):
    """The factors and op order that :func:`color_jitter` draws from the same ``seed``.

    Returns:
      factors: float32 [4], (brightness, contrast, saturation) ``~ U[max(0, 1 - v), 1 + v]``
        and the hue shift ``~ U[-hue, hue]``.
      order: int32 [4], a uniform random permutation of (0, 1, 2, 3) =
        (brightness, contrast, saturation, hue): ``order[k]`` is the k-th op applied.
    """
    _check_jitter(brightness, contrast, saturation, hue)
    _, factor_seed, order_seed = _split(_seed(seed), 3)  # the first seed is the gate's
    lo = tf.constant([max(0.0, 1.0 - brightness), max(0.0, 1.0 - contrast),
                      max(0.0, 1.0 - saturation), -hue], tf.float32)
    hi = tf.constant([1.0 + brightness, 1.0 + contrast, 1.0 + saturation, hue], tf.float32)
    factors = lo + (hi - lo) * tf.random.stateless_uniform([4], factor_seed)
    order = tf.argsort(tf.random.stateless_uniform([4], order_seed))
    return factors, order


def color_jitter(image, seed, brightness, contrast, saturation, hue, p=0.8):
    """``RandomApply([ColorJitter(brightness, contrast, saturation, hue)], p)``.

    Factors: brightness, contrast and saturation ``~ U[max(0, 1 - v), 1 + v]``, hue shift
    ``~ U[-hue, hue]``; the four ops run in a random order (torchvision permutes them on
    every call), and an op with strength 0 is skipped as torchvision does. The draws
    are :func:`color_jitter_params` of the same seed.

    Args:
      image: float32 [H, W, 3] in [0, 1]. seed: int32/int64 [2].
      brightness, contrast, saturation: >= 0; hue: in [0, 0.5]; Python numbers.
    Returns:
      float32 [H, W, 3] in [0, 1].
    """
    _check_jitter(brightness, contrast, saturation, hue)
    image = _to_float(image)
    if not (brightness or contrast or saturation or hue):
        return image
    seed = _seed(seed)
    gate_seed = _split(seed, 3)[0]

    def jitter(x):
        factors, order = color_jitter_params(seed, brightness, contrast, saturation, hue)
        ops = (adjust_brightness if brightness else None,
               adjust_contrast if contrast else None,
               adjust_saturation if saturation else None,
               adjust_hue if hue else None)
        branches = [(lambda y, op=op, i=i: op(y, factors[i])) if op else (lambda y: y)
                    for i, op in enumerate(ops)]
        for step in range(4):
            # Only the selected branch runs: tf.switch_case lowers to a Case op.
            x = tf.switch_case(order[step], [lambda f=f, x=x: f(x) for f in branches])
        return x

    return _apply_with_prob(p, gate_seed, jitter, image)


def random_grayscale(image, seed, p):
    """torchvision ``RandomGrayscale``: luma replicated to 3 channels with prob. ``p``.

    float32 [H, W, 3] -> [H, W, 3].
    """
    image = _to_float(image)
    return _apply_with_prob(p, _seed(seed), lambda x: _color_matmul(x, _gray_matrix()), image)


# ----------------------------------------------------------------- blur and solarise


def _blur_rows(x, kernels, radius):
    """Correlate float [H, M] along H, column m with ``kernels[:, m]`` of 2r+1 taps,
    reflect-padded.

    Reflect mirrors without repeating the edge row, as torch's "reflect" padding.
    """
    height, columns = tf.shape(x)[0], tf.shape(x)[1]
    # Concatenating reversed slices is ~3x faster than tf.pad(mode="REFLECT") on CPU.
    padded = tf.concat([x[radius:0:-1], x, x[-2:-radius - 2:-1]], axis=0)
    # As [1, H, 1, M] the depthwise conv runs over all M columns at once, which its CPU
    # kernel vectorises far better than over 3 channels.
    padded = tf.reshape(padded, [1, height + 2 * radius, 1, columns])
    out = tf.nn.depthwise_conv2d(padded, tf.reshape(kernels, [2 * radius + 1, 1, columns, 1]),
                                 [1, 1, 1, 1], "VALID")
    return tf.reshape(out, [height, columns])


def _blur_setup(sigma):
    lo, hi = float(sigma[0]), float(sigma[1])
    if not 0 < lo <= hi:
        raise ValueError(f"sigma must be a (min, max) pair of positive numbers, got {sigma}.")
    return lo, hi, max(1, math.ceil(3.0 * hi))


def _blur_kernel(sigma_seed, lo, hi, radius):
    """The normalised Gaussian of ``sigma ~ U(lo, hi)``: float32 [2·radius + 1]."""
    s = tf.random.stateless_uniform([], sigma_seed, minval=lo, maxval=hi)
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(taps / s))
    return kernel / tf.reduce_sum(kernel)


def gaussian_blur(image, seed, p, sigma=(0.1, 2.0)):
    """Gaussian blur with ``sigma ~ U(sigma)`` applied with probability ``p``.

    The BYOL/DINO/SimCLR view blur. Separable kernel of ``2·ceil(3·sigma_max) + 1`` taps
    (weights ``exp(-x²/2σ²)``, normalised), reflect padding as torchvision's
    ``GaussianBlur``; H and W must exceed ``ceil(3·sigma_max)``.

    Args:
      image: float32 [H, W, 3]. seed: int32/int64 [2]. p: probability.
      sigma: (min, max) standard deviation in pixels.
    Returns:
      float32 [H, W, 3].
    """
    lo, hi, radius = _blur_setup(sigma)
    gate_seed, sigma_seed = _split(_seed(seed), 2)
    image = _to_float(image)

    def blur(x):
        kernel = _blur_kernel(sigma_seed, lo, hi, radius)
        height, width = tf.shape(x)[0], tf.shape(x)[1]
        y = _blur_rows(tf.reshape(x, [height, width * 3]),
                       tf.tile(kernel[:, None], [1, width * 3]), radius)
        y = tf.transpose(tf.reshape(y, [height, width, 3]), [1, 0, 2])
        y = _blur_rows(tf.reshape(y, [width, height * 3]),
                       tf.tile(kernel[:, None], [1, height * 3]), radius)
        y = tf.transpose(tf.reshape(y, [width, height, 3]), [1, 0, 2])
        y.set_shape(x.shape)
        return y

    return _apply_with_prob(p, gate_seed, blur, image)


def gaussian_blurs(images, seeds, ps, sigma=(0.1, 2.0)):
    """:func:`gaussian_blur` of each view with its own seed and ``p``, as one convolution.

    The same draws and result as view-by-view calls. Views of up to 128 × 128 pixels
    (multi-crop's local crops) are blurred by one convolution, a view that is not
    blurred getting the identity kernel: for small views that costs less than a
    convolution per blurred view; larger views are blurred one by one, skipping the
    ungated ones.

    Args:
      images: float32 [V, H, W, 3]; seeds: V int32/int64 [2]; ps: V probabilities.
    Returns:
      float32 [V, H, W, 3].
    """
    images = _to_float(images)
    if images.shape[1] * images.shape[2] > 128 * 128:
        return tf.stack([gaussian_blur(x, s, p, sigma)
                         for x, s, p in zip(tf.unstack(images), seeds, ps, strict=True)])
    lo, hi, radius = _blur_setup(sigma)
    identity = tf.one_hot(radius, 2 * radius + 1)
    kernels = []
    for seed, p in zip(seeds, ps, strict=True):
        gate_seed, sigma_seed = _split(_seed(seed), 2)
        kernel = _blur_kernel(sigma_seed, lo, hi, radius)
        kernels.append(_apply_with_prob(p, gate_seed, lambda _, k=kernel: k, identity))
    kernels = tf.stack(kernels)  # [V, taps]
    views, height, width = images.shape[0], tf.shape(images)[1], tf.shape(images)[2]
    # Rows: [H, V·W·3], each view's columns with its kernel; then columns likewise.
    x = tf.reshape(tf.transpose(images, [1, 0, 2, 3]), [height, -1])
    x = _blur_rows(x, tf.transpose(tf.repeat(kernels, width * 3, axis=0)), radius)
    x = tf.transpose(tf.reshape(x, [height, views, width, 3]), [2, 1, 0, 3])
    x = _blur_rows(tf.reshape(x, [width, -1]),
                   tf.transpose(tf.repeat(kernels, height * 3, axis=0)), radius)
    out = tf.transpose(tf.reshape(x, [width, views, height, 3]), [1, 2, 0, 3])
    out.set_shape(images.shape)
    return out


def solarize(image, seed, p, threshold=0.5):
    """``RandomSolarize``: pixels ``>= threshold`` become ``1 - x``, with probability ``p``.

    On [0, 1] floats this is PIL's ``ImageOps.solarize(img, 128)``. [H, W, 3] -> [H, W, 3].
    """
    image = _to_float(image)
    return _apply_with_prob(
        p, _seed(seed), lambda x: _solarize(x, threshold), image)


def _solarize(x, threshold):
    # Both forms are exact; tf.where's Select kernel is several times slower on CPU.
    if isinstance(threshold, numbers.Real) and threshold == 0.5:
        return tf.minimum(x, 1.0 - x)
    inverted = tf.cast(x >= threshold, tf.float32)
    return inverted * (1.0 - x) + (1.0 - inverted) * x


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Per-channel ``(x - mean) / std``: float32 [H, W, C] -> [H, W, C]."""
    image = _to_float(image)
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    if image.shape.is_fully_defined():
        # Broadcasting over a trailing axis of 3 is ~5x slower on CPU than an
        # elementwise op, so with a static shape subtract and divide full-size constants.
        mean = np.broadcast_to(mean, image.shape)
        std = np.broadcast_to(std, image.shape)
    return (image - tf.constant(mean)) / tf.constant(std)
