"""Antialiased crop-and-resize as block-banded matrix products (TF ops).

The result is that of ``tf.image.resize(crop, size, antialias=True)`` (TF's
ScaleAndTranslate with the same kernels) and of PIL's ``Image.resize`` in floating
point, to within 0.03 on [0, 255] (float32 rounding of the coordinates): separable,
each output pixel a normalised kernel average of the input pixels around its centre,
the kernel stretched by the scale factor when shrinking. ScaleAndTranslate runs a
scalar loop per output pixel; here each axis is one batched matmul, which on CPU makes
RandomResizedCrop — the largest cost of the multi-crop recipes — about twice as fast.

An axis of ``n_in`` pixels resized to ``n_out`` is split into blocks of ``_BLOCK`` output
pixels. The kernel of an output block touches only a contiguous window of ``span ≈
_BLOCK · n_in / n_out + taps`` input pixels, so each block is a dense ``[_BLOCK, span]``
weight matrix times the window's ``[span, ...]`` rows: the matmuls skip most of the
zeros of the full ``[n_out, n_in]`` matrix. The weights of all the crops of an image
are computed together, since with sizes known only at run time their many small ops
would otherwise cost as much as the matmuls. Images of at most ``DENSE_MAX_PIXELS``
(28 px Fashion-MNIST, 32 px CIFAR) skip the blocks: each crop is two dense products with
``[n_out, n_image]`` matrices over the whole image, zero outside the crop.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

# Output pixels per block: 16 measured fastest for 96- and 224-pixel crops.
_BLOCK = 16
# oneDNN sets up each new matmul shape anew (~0.5 ms, more than the product itself), so
# window lengths and crop widths are rounded up to these steps: crops of random sizes
# then share a few hundred shapes.
_SPAN_STEP = 8
_WIDTH_STEP = 32


def _keys_cubic(x):
    """Keys' cubic with a = −0.5 (PIL, torchvision and TF "bicubic"); 0 for |x| ≥ 2."""
    x = tf.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1.0
    far_x = tf.minimum(x, 2.0)  # the far piece is 0 at 2: clamping zeroes the tail
    far = ((-0.5 * far_x + 2.5) * far_x - 4.0) * far_x + 2.0
    return tf.where(x < 1.0, near, far)


def _triangle(x):
    return tf.nn.relu(1.0 - tf.abs(x))


# method -> (kernel radius in input pixels when not shrinking, kernel)
KERNELS = {"bilinear": (1.0, _triangle), "bicubic": (2.0, _keys_cubic)}


def _tap_weights(kernel, position, center, stretch, n_in, gain):
    """The kernel of output pixels centred on ``center`` at input ``position``s, zero at
    positions outside ``[0, n_in)``, each row normalised to sum to ``gain``.

    Normalising over the taps also renormalises at the borders, as PIL and TF do. All
    arguments broadcast against ``position`` [N, n_out, K]; returns float32 of its shape.
    """
    inside = (position >= 0.0) & (position < n_in)
    weights = tf.where(inside, kernel((position - center) / stretch), 0.0)
    return weights * (gain / tf.reduce_sum(weights, -1, keepdims=True))


def axis_weights(n_in, n_out: int, method: str, gain):
    """Block-banded resampling matrices of ``N`` axes, all resized to ``n_out`` pixels.

    Args:
      n_in: int32 [N], the input lengths. n_out: Python int.
      method: "bilinear" or "bicubic". gain: float32 [N], each axis's weights sum to it.
    Returns:
      start: int32 [N, G], the first input pixel of each block's window;
      span: int32 [N], each axis's window length;
      weights: float32 [N, G, _BLOCK, max(span)]; axis n uses ``[..., :span[n]]``, and
        rows past ``n_out`` are zero.
    """
    radius, kernel = KERNELS[method]
    blocks = -(-n_out // _BLOCK)
    n_in_f = tf.cast(n_in, tf.float32)[:, None]  # [N, 1]
    scale = n_in_f / n_out
    stretch = tf.maximum(scale, 1.0)  # shrinking widens the kernel: the antialiasing
    taps = tf.minimum(tf.math.ceil(2.0 * radius * stretch) + 1.0, n_in_f)  # [N, 1]
    num_taps = tf.cast(tf.reduce_max(taps), tf.int32)
    # Output pixel i is centred on input coordinate (i + 0.5)·scale − 0.5 (half-pixel);
    # its taps are the `taps` pixels from `first`, which cover its support.
    center = (np.arange(n_out, dtype=np.float32) + 0.5) * scale - 0.5  # [N, n_out]
    first = tf.clip_by_value(tf.floor(center - radius * stretch + 1.0), 0.0, n_in_f - taps)
    tap = tf.range(num_taps, dtype=tf.float32)
    position = first[..., None] + tap  # [N, n_out, K]; axes with fewer taps than K: past n_in
    weights = _tap_weights(kernel, position, center[..., None], stretch[..., None],
                           n_in_f[..., None], gain[:, None, None])

    # Scatter each output's taps into its block's window.
    span = tf.math.ceil((_BLOCK - 1) * scale) + 1.0 + taps
    span = tf.minimum(tf.math.ceil(span / _SPAN_STEP) * _SPAN_STEP, n_in_f)  # [N, 1]
    start = tf.minimum(first[:, ::_BLOCK], n_in_f - span)  # [N, G]
    block_of_row = np.arange(n_out) // _BLOCK
    column = first - tf.gather(start, block_of_row, axis=1)  # [N, n_out]
    column = tf.minimum(column[..., None] + tap, span[..., None] - 1.0)  # only 0-weight taps move
    num_axes = tf.shape(n_in)[0]
    max_span = tf.cast(tf.reduce_max(span), tf.int32)
    row = tf.range(num_axes)[:, None] * (blocks * _BLOCK) + np.arange(n_out, dtype=np.int32)
    flat = row[..., None] * max_span + tf.cast(column, tf.int32)  # [N, n_out, K]
    # A segment sum is the scatter (zero-weight taps may share a cell), ~5x faster on CPU.
    dense = tf.math.unsorted_segment_sum(weights, flat, num_axes * blocks * _BLOCK * max_span)
    return (tf.cast(start, tf.int32), tf.cast(span[:, 0], tf.int32),
            tf.reshape(dense, [-1, blocks, _BLOCK, max_span]))


def _resample_rows(x, n_out: int, start, span, weights):
    """Axis 0 of ``x`` [n_in, M] resampled with one axis's :func:`axis_weights`."""
    windows = tf.gather(x, start[:, None] + tf.range(span))  # [G, span, M]
    if windows.dtype != tf.float32:  # uint8 images: convert only the rows in use
        windows = tf.cast(windows, tf.float32)
    out = tf.matmul(weights[..., :span], windows)  # [G, _BLOCK, M]
    return tf.reshape(out, [-1, tf.shape(x)[1]])[:n_out]


def image_axis_weights(offset, length, n_image: int, n_out: int, method: str, gain):
    """Dense resampling matrices of crops of one image axis, over the whole axis.

    Row i of crop n is the kernel of output pixel i over the ``n_image`` pixels of the
    axis, zero outside the crop ``[offset[n], offset[n] + length[n])``: the same weights
    as :func:`axis_weights` gives the crop's own pixels.

    Args:
      offset, length: int32 [N]; n_image, n_out: Python ints.
      method: "bilinear" or "bicubic". gain: float32 [N], each row sums to it.
    Returns:
      float32 [N, n_out, n_image].
    """
    _, kernel = KERNELS[method]
    length_f = tf.cast(length, tf.float32)[:, None, None]  # [N, 1, 1]
    scale = length_f / n_out
    center = (np.arange(n_out, dtype=np.float32)[:, None] + 0.5) * scale - 0.5  # [N, n_out, 1]
    # In crop coordinates; the kernel is 0 past its radius, so every pixel is a tap.
    position = np.arange(n_image, dtype=np.float32) - tf.cast(offset, tf.float32)[:, None, None]
    return _tap_weights(kernel, position, center, tf.maximum(scale, 1.0), length_f,
                        gain[:, None, None])


def _crop_and_resize_dense(image, boxes, size, method, gain):
    """:func:`crop_and_resize` as two dense products per crop: cheaper than the blocks'
    gathers and scatters when the whole image is only a few thousand pixels."""
    height, width, channels = image.shape
    num_views = boxes.shape[0]
    rows = image_axis_weights(boxes[:, 0], boxes[:, 2], height, size[0], method,
                              tf.fill([num_views], tf.cast(gain, tf.float32)))
    columns = image_axis_weights(boxes[:, 1], boxes[:, 3], width, size[1], method,
                                 tf.ones([num_views], tf.float32))
    image = tf.reshape(tf.cast(image, tf.float32), [height, width * channels])
    out = tf.matmul(rows, tf.broadcast_to(image, [num_views, height, width * channels]))
    out = tf.reshape(out, [num_views, size[0], width, channels])
    return tf.einsum("vjw,viwc->vijc", columns, out)


# Images of at most this many pixels are resampled by dense products.
DENSE_MAX_PIXELS = 64 * 64


def crop_and_resize(image, boxes, size: tuple[int, int], method: str, gain: float = 1.0):
    """Crops of ``image`` resized with antialiasing, as ``tf.image.resize(crop, size,
    method, antialias=True)`` of each crop.

    Args:
      image: [H, W, C], uint8 or float.
      boxes: int32 [V, 4] of (top, left, height, width); V static.
      size: (height, width) of the outputs; method: "bilinear" or "bicubic".
      gain: multiplies the outputs (1/255 maps uint8 to [0, 1] for free).
    Returns:
      float32 [V, size[0], size[1], C]; bicubic overshoots are not clipped.
    """
    if method not in KERNELS:
        raise ValueError(f"method must be 'bilinear' or 'bicubic', not {method!r}.")
    out_h, out_w = size
    boxes = tf.cast(boxes, tf.int32)
    image = tf.convert_to_tensor(image)
    if image.shape.is_fully_defined() and image.shape[0] * image.shape[1] <= DENSE_MAX_PIXELS:
        return _crop_and_resize_dense(image, boxes, size, method, gain)
    num_views = boxes.shape[0]
    heights, widths = boxes[:, 2], boxes[:, 3]
    ones = tf.ones([num_views], tf.float32)
    if out_h == out_w:  # one batch of weights for both axes of every crop
        both = axis_weights(tf.concat([heights, widths], 0), out_h, method,
                            tf.concat([gain * ones, ones], 0))
        row_weights = [t[:num_views] for t in both]
        column_weights = [t[num_views:] for t in both]
    else:
        row_weights = axis_weights(heights, out_h, method, gain * ones)
        column_weights = axis_weights(widths, out_w, method, ones)
    channels = tf.shape(image)[2]
    views = []
    for v in range(num_views):
        top, left, h, w = tf.unstack(boxes[v])
        crop = tf.slice(image, tf.stack([top, left, 0]), tf.stack([h, w, -1]))
        # Zero columns up to the width step (see _WIDTH_STEP); no output reads them.
        padded_w = -(-w // _WIDTH_STEP) * _WIDTH_STEP
        crop = tf.pad(crop, tf.stack([[0, 0], [0, padded_w - w], [0, 0]]))
        rows = _resample_rows(tf.reshape(crop, [h, padded_w * channels]), out_h,
                              *(t[v] for t in row_weights))  # [out_h, padded_w·C]
        columns = tf.transpose(tf.reshape(rows, [out_h, padded_w, channels]), [1, 0, 2])
        out = _resample_rows(tf.reshape(columns, [padded_w, out_h * channels]), out_w,
                             *(t[v] for t in column_weights))  # [out_w, out_h·C]
        views.append(tf.transpose(tf.reshape(out, [out_w, out_h, channels]), [1, 0, 2]))
    return tf.stack(views)
