"""Benchmark of the backbones in ``jax_ssl.models``: forward+backward time and FLOP/s.

Usage::

    python experiments/bench/models.py [--batch N] [--repeats 3] [--only resnet50,vit_b16]
                                       [--dtype float32,bfloat16] [--peak-tflops T]
                                       [--markdown]

Cases: ResNet-18 at 32 px with the CIFAR stem, ResNet-50, ViT-S/16 and ViT-B/16 at
224 px, each with compute ``dtype`` float32 and bfloat16 (the models' ``dtype`` field;
parameters stay float32, images are float32).

The timed step is ``jax.jit(jax.value_and_grad(loss))`` with respect to the parameters,
where ``loss`` is the mean of squares of the backbone's output features: the pooled
features of a ResNet in train mode (``mutable=['batch_stats']``, so BN uses batch
statistics; the updated running averages are not returned), the ``cls`` output of a
ViT. Parameters (from ``model.init``) and images (seeded N(0, 1), values irrelevant)
are put on the default device before timing. "compile s" is the time of
``.lower(...).compile()`` of that step. Its time is the median of ``--repeats`` steps after
one warm-up step, each timed with ``jax.block_until_ready``, shown per image ("ms/img")
and as images per second ("img/s").

FLOPs are per image, of the forward pass only:
  * "XLA GF": ``cost_analysis()['flops']`` of ``jax.jit(forward).lower(...).compile()``
    (the same forward as the timed loss, same dtype) divided by the batch. It counts every
    HLO op, so BN, softmax, GELU, converts, etc. add a little to the convs and matmuls;
    but for a conv it counts only the taps that fall inside the image, not those on the
    zero padding, so it is below the analytic count for the ResNets (ResNet-18 at 32 px:
    0.964 GFLOP of non-padding conv taps vs 1.111 with them; ResNet-50: 7.89 vs 8.17).
    When the backend gives no cost analysis the cell shows "-" and the analytic count is
    used instead (a footnote says so).
  * "analytic GF": 2 × the multiply-adds of the convs and matmuls alone — for a
    ResNet every conv (no classifier); for a ViT the patch embedding plus, per block with
    N = 1 + L tokens of width D and MLP width H, N·(4·D² + 2·D·H) + 2·N²·D (qkv, output
    projection, MLP, QKᵀ and attention × V). ResNet-50 at 224 px: 8.2, ViT-B/16: 35.1.
Training FLOPs are taken as 3 × forward (backward ≈ 2 × forward), so "TFLOP/s" (achieved)
= 3 × forward FLOPs per image (XLA's, or the analytic fallback) × img/s, and with
``--peak-tflops`` "MFU %" = achieved / peak. After the table a reference line gives the
FLOP/s of a plain jitted 2048×2048 @ 2048×2048 matmul (2·n³ FLOPs) in each requested dtype
on the same backend: the float32 one is the bar model FLOP/s are compared with. Matmuls
run at JAX's default precision, the same for the models and the reference.

``--batch`` sets every case's batch; by default 64 images at 32 px and 8 at 224 px
(sized for a 2-core CPU; use e.g. ``--batch 128`` on a GPU).

Measured on a 2-core CPU (Intel Xeon with AVX-512 and AMX, XLA:CPU), machine otherwise
idle, with ``python experiments/bench/models.py --repeats 3`` (2.5 minutes, 3.8 GB peak
host memory)::

    jax 0.10.2, backend cpu, devices [CpuDevice(id=0)], repeats 3 (median)
    model           dtype      px  batch  compile s  ms/img  img/s  XLA GF  analytic GF  TFLOP/s
    --------------  --------  ---  -----  ---------  ------  -----  ------  -----------  -------
    resnet18_cifar  float32    32     64        1.3   30.50   32.8   0.969        1.111   0.0953
    resnet18_cifar  bfloat16   32     64        1.6   27.84   35.9   0.972        1.111    0.105
    resnet50        float32   224      8        3.7  377.16    2.7   8.027        8.174   0.0639
    resnet50        bfloat16  224      8        4.0  310.33    3.2   8.042        8.174   0.0777
    vit_s16         float32   224      8        1.4  178.88    5.6   9.470        9.197    0.159
    vit_s16         bfloat16  224      8        2.3  200.54    5.0   9.566        9.197    0.143
    vit_b16         float32   224      8        1.5  528.17    1.9  35.673       35.126    0.203
    vit_b16         bfloat16  224      8        2.3  581.72    1.7  35.874       35.126    0.185
    GF: forward GFLOP per image; training FLOPs = 3 x forward; TFLOP/s = 3 x XLA GF x img/s.
    reference: jitted 2048x2048 @ 2048x2048 matmul: float32 0.318 TFLOP/s, bfloat16 0.290 TFLOP/s

XLA:CPU reaches 0.32 TFLOP/s on the float32 reference matmul; ViT-B/16 trains at 64% of
that and ViT-S/16 at 50%, while the ResNets' convs reach only 20-30%. bfloat16 gains
nothing worth having here: XLA:CPU apparently does not use the bf16 units (its bf16 matmul is
~10% slower than float32), so the ViTs are ~10% slower in bfloat16 and the ResNets
10-20% faster (probably the halved memory traffic of BN/ReLU). Expect the opposite on a GPU.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from benchlib import markdown_table, plain_table, selected_names, time_fn

from jax_ssl.models import backbone
from jax_ssl.models.resnet import ResNet
from jax_ssl.models.vit import VisionTransformer


class Case(NamedTuple):
    name: str
    model: str  # name in jax_ssl.models.BACKBONES
    image_size: int
    batch: int  # default batch (2-core CPU)
    overrides: dict[str, Any]  # backbone fields besides dtype


CASES = [
    Case("resnet18_cifar", "resnet18", 32, 64, {"cifar_stem": True}),
    Case("resnet50", "resnet50", 224, 8, {}),
    Case("vit_s16", "vit_s16", 224, 8, {}),
    Case("vit_b16", "vit_b16", 224, 8, {}),
]

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


# ----------------------------------------------------------------------------------------
# Analytic FLOPs
# ----------------------------------------------------------------------------------------


def _conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a conv padded k//2 on each side (the ResNet's PyTorch padding)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def resnet_forward_flops(model: ResNet, image_size: int) -> int:
    """2 × multiply-adds of every conv of ``model`` on one image_size² RGB image."""
    macs = 0

    def conv(size, c_in, c_out, kernel, stride):
        nonlocal macs
        out = _conv_out(size, kernel, stride)
        macs += out * out * kernel * kernel * c_in * c_out
        return out

    width, expansion = model.width, model.block_cls.expansion
    if model.cifar_stem:
        size = conv(image_size, 3, width, 3, 1)
    else:
        size = conv(image_size, 3, width, 7, 2)
        size = _conv_out(size, 3, 2)  # max-pool
    channels = width
    for i, num_blocks in enumerate(model.stage_sizes):
        features = width * 2 ** i
        for j in range(num_blocks):
            stride = 2 if i > 0 and j == 0 else 1
            if expansion == 1:  # BasicBlock: 3×3 (stride), 3×3
                out = conv(size, channels, features, 3, stride)
                conv(out, features, features, 3, 1)
            else:  # Bottleneck: 1×1, 3×3 (stride), 1×1
                conv(size, channels, features, 1, 1)
                out = conv(size, features, features, 3, stride)
                conv(out, features, features * expansion, 1, 1)
            if stride != 1 or channels != features * expansion:  # 1×1 shortcut conv
                conv(size, channels, features * expansion, 1, stride)
            size, channels = out, features * expansion
    return 2 * macs


def vit_forward_flops(model: VisionTransformer, image_size: int) -> int:
    """2 × multiply-adds of the patch embedding and the blocks' matmuls, one image."""
    patches = (image_size // model.patch_size) ** 2
    dim, hidden, tokens = model.embed_dim, int(model.embed_dim * model.mlp_ratio), patches + 1
    embed = patches * model.patch_size ** 2 * 3 * dim
    block = tokens * (4 * dim * dim + 2 * dim * hidden) + 2 * tokens * tokens * dim
    return 2 * (embed + model.depth * block)


def analytic_forward_flops(model, image_size: int) -> int:
    if isinstance(model, ResNet):
        return resnet_forward_flops(model, image_size)
    return vit_forward_flops(model, image_size)


# ----------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------


def features(model, params, rest, images):
    """The backbone's output features as in training: [B, num_features]."""
    if isinstance(model, ResNet):
        out, _ = model.apply({"params": params, **rest}, images, train=True,
                             mutable=["batch_stats"])
        return out
    return model.apply({"params": params, **rest}, images, train=True)["cls"]


def xla_flops(fn, args) -> float | None:
    """``cost_analysis()['flops']`` of ``jax.jit(fn)`` on ``args``, or None if unavailable."""
    try:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    except Exception:  # noqa: BLE001 - backends without a cost model raise various errors
        return None
    if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
        cost = cost[0] if cost else None
    flops = cost.get("flops") if cost else None
    return float(flops) if flops and flops > 0 else None


def run_case(case, dtype_name, batch, repeats, seed):
    """(table cells without MFU, achieved FLOP/s, whether XLA's count was missing)."""
    model = backbone(case.model, dtype=DTYPES[dtype_name], **case.overrides)
    images = np.random.default_rng(seed).standard_normal(
        (batch, case.image_size, case.image_size, 3), dtype=np.float32)
    images = jax.block_until_ready(jax.device_put(images))
    variables = jax.jit(lambda key, x: model.init(key, x, train=False))(
        jax.random.PRNGKey(seed), images[:1])
    params, rest = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    args = jax.block_until_ready((params, rest, images))

    def forward(params, rest, images):
        return features(model, params, rest, images)

    def loss(params, rest, images):
        return jnp.mean(jnp.square(forward(params, rest, images).astype(jnp.float32)))

    analytic = analytic_forward_flops(model, case.image_size)
    xla_total = xla_flops(forward, args)
    xla = xla_total / batch if xla_total else None
    compile_s, step_s = time_fn(jax.value_and_grad(loss), args, repeats)
    images_per_s = batch / step_s
    achieved = 3 * (xla or analytic) * images_per_s
    cells = [case.name, dtype_name, str(case.image_size), str(batch), f"{compile_s:.1f}",
             f"{1e3 * step_s / batch:.2f}", f"{images_per_s:.1f}",
             f"{xla / 1e9:.3f}" if xla else "-", f"{analytic / 1e9:.3f}",
             significant(achieved / 1e12)]
    return cells, achieved, xla is None


def matmul_flops_per_s(n, dtype, repeats, seed):
    """FLOP/s (2·n³ per call) of a jitted n×n @ n×n matmul in ``dtype``."""
    rng = np.random.default_rng(seed)
    a, b = (jax.device_put(jnp.asarray(rng.standard_normal((n, n), dtype=np.float32), dtype))
            for _ in range(2))
    _, seconds = time_fn(jnp.matmul, jax.block_until_ready((a, b)), max(repeats, 5))
    return 2 * n ** 3 / seconds


def significant(x, digits=3):
    """x with ``digits`` significant digits, never in exponent notation: 0.152, 312."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------

HEADER = ["model", "dtype", "px", "batch", "compile s", "ms/img", "img/s", "XLA GF",
          "analytic GF", "TFLOP/s"]
TEXT_COLUMNS = 2  # left-aligned; the rest are numbers, right-aligned


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=None,
                        help="batch of every case (default: 64 at 32 px, 8 at 224 px)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--dtype", default="float32,bfloat16",
                        help="comma-separated compute dtypes (float32, bfloat16)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s; adds an MFU column")
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="n of the reference n×n @ n×n matmul (0: skip it)")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    only = selected_names(parser, [c.name for c in CASES], args.only)
    dtypes = [d for d in args.dtype.split(",") if d]
    if not dtypes or set(dtypes) - set(DTYPES):
        parser.error(f"--dtype takes a comma-separated subset of {', '.join(DTYPES)}")
    if args.repeats < 1 or (args.batch is not None and args.batch < 1):
        parser.error("--repeats and --batch must be >= 1")
    if args.peak_tflops is not None and args.peak_tflops <= 0:
        parser.error("--peak-tflops must be > 0")

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}, "
          f"repeats {args.repeats} (median)")
    jax.jit(lambda x: x + 1).lower(np.float32(0)).compile()  # JAX's one-off start-up cost
    header = HEADER + (["MFU %"] if args.peak_tflops else [])
    rows, fallback = [], []
    for case in CASES:
        if case.name not in only:
            continue
        for dtype_name in dtypes:
            print(f"{case.name} {dtype_name}...", file=sys.stderr, flush=True)
            cells, achieved, missing = run_case(case, dtype_name, args.batch or case.batch,
                                                args.repeats, args.seed)
            if args.peak_tflops:
                cells.append(f"{100 * achieved / (args.peak_tflops * 1e12):.1f}")
            rows.append(cells)
            if missing:
                fallback.append(f"{case.name} {dtype_name}")

    reference = []
    if args.matmul_size > 0:
        n = args.matmul_size
        for dtype_name in ["float32", *[d for d in dtypes if d != "float32"]]:
            print(f"matmul {dtype_name}...", file=sys.stderr, flush=True)
            flops = matmul_flops_per_s(n, DTYPES[dtype_name], args.repeats, args.seed)
            mfu = (f" ({100 * flops / (args.peak_tflops * 1e12):.1f}% of peak)"
                   if args.peak_tflops else "")
            reference.append(f"{dtype_name} {significant(flops / 1e12)} TFLOP/s{mfu}")

    print(plain_table(header, rows, TEXT_COLUMNS))
    print("GF: forward GFLOP per image; training FLOPs = 3 x forward; "
          "TFLOP/s = 3 x XLA GF x img/s."
          + (f" No XLA cost analysis for {', '.join(fallback)}: analytic FLOPs used."
             if fallback else ""))
    if reference:
        print(f"reference: jitted {args.matmul_size}x{args.matmul_size} @ "
              f"{args.matmul_size}x{args.matmul_size} matmul: {', '.join(reference)}")
    if args.markdown:
        print()
        print(markdown_table(header, rows, TEXT_COLUMNS))


if __name__ == "__main__":
    main()
