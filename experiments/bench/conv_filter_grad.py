"""The filter gradient of ResNet-18's convolutions (CIFAR stem, batch 256 = SimCLR's two
views of 128): XLA's own against ``jax_ssl.models.layers.filter_gradient_by_rows``.

Usage::

    python experiments/bench/conv_filter_grad.py [--batch 256] [--repeats 3] [--markdown]

For each distinct 3×3 convolution of the network (input size, channels, stride) it times
the forward convolution, XLA's filter gradient (``jax.vjp`` of ``lax.conv_general_dilated``
with respect to the kernel) and ours, in float32, and checks that the two gradients
agree. "× per step" is how often the shape occurs in one ResNet-18 forward; the last row
sums the columns weighted by it.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import benchlib  # noqa: E402

from jax_ssl.models import layers  # noqa: E402

# (input size, input channels, output channels, stride, occurrences in ResNet-18)
SHAPES = [(32, 64, 64, 1, 4), (32, 64, 128, 2, 1), (16, 128, 128, 1, 3),
          (16, 128, 256, 2, 1), (8, 256, 256, 1, 3), (8, 256, 512, 2, 1),
          (4, 512, 512, 1, 3)]
PADDING = ((1, 1), (1, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    header = ["input", "channels", "stride", "× per step", "forward ms", "XLA filter grad ms",
              "ours ms", "speed-up"]
    rows, totals = [], np.zeros(3)
    for size, cin, cout, stride, count in SHAPES:
        x = jnp.asarray(rng.standard_normal((args.batch, size, size, cin)), jnp.float32)
        kernel = jnp.asarray(rng.standard_normal((3, 3, cin, cout)) * 0.05, jnp.float32)
        grad_out = jnp.asarray(rng.standard_normal(
            (args.batch, size // stride, size // stride, cout)), jnp.float32)

        def forward(x, kernel, stride=stride):
            return layers._plain_conv(x, kernel, (stride, stride), PADDING)

        def xla_filter_grad(x, kernel, grad_out, forward=forward):
            return jax.vjp(lambda k: forward(x, k), kernel)[1](grad_out)[0]

        def ours(x, kernel, grad_out, stride=stride):
            return layers.filter_gradient_by_rows(x, grad_out, kernel.shape, (stride, stride),
                                                  PADDING)

        want = jax.jit(xla_filter_grad)(x, kernel, grad_out)
        got = jax.jit(ours)(x, kernel, grad_out)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * float(jnp.abs(want).max()))
        times = np.array([benchlib.time_fn(fn, fn_args, args.repeats)[1] * 1e3 for fn, fn_args in (
            (forward, (x, kernel)), (xla_filter_grad, (x, kernel, grad_out)),
            (ours, (x, kernel, grad_out)))])
        totals += count * times
        rows.append([f"{size}x{size}", f"{cin}->{cout}", str(stride), str(count),
                     *(f"{t:.0f}" for t in times), f"{times[1] / times[2]:.1f}x"])
    rows.append(["ResNet-18", "all", "", "", *(f"{t:.0f}" for t in totals),
                 f"{totals[1] / totals[2]:.1f}x"])
    table = benchlib.markdown_table if args.markdown else benchlib.plain_table
    print(f"batch {args.batch}, float32, {jax.default_backend()}, "
          f"median of {args.repeats} after a warm-up")
    print(table(header, rows, text_columns=4))


if __name__ == "__main__":
    main()
