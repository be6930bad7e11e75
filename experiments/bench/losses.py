"""Benchmark of every loss in ``jax_ssl.losses`` at the sizes real training runs use.

Usage::

    python experiments/bench/losses.py [--scale 0.125] [--repeats 5] [--only dino,swav]
                                       [--markdown]

For each case it prints the input shapes, the compile time in seconds of
``jax.jit(fn).lower(*args).compile()`` for the forward value and for
``jax.value_and_grad`` ("fwd/f+b"), and the median steady-state milliseconds per call of
each (after one warm-up call, timed with ``jax.block_until_ready``). Inputs are float32
(int32 indices and labels) drawn once from a seeded ``np.random.default_rng`` and put on
the default device before timing; their values are random, only their shapes matter. A
``*`` marks the inputs that fwd+bwd differentiates; cases without one (``sinkhorn``,
which stops gradients, ``patchify``, ``memory_bank_update``) are timed forward only.
``dino`` times the loss without its ``new_center`` output.

``--scale`` multiplies the batch-like dimension of every case (never below 2); class,
feature, prototype, patch and memory-bank sizes stay as they are (SwAV's queue rows
scale with the batch). The largest inputs are iBOT's 64x196x8192 student and teacher
(411 MB each) and DINO's 10x64x65536 student (168 MB); Barlow Twins and VICReg hold
8192x8192 matrices (268 MB) at any scale.

On a 2-core CPU (XLA:CPU, ~200 GFLOP/s float32 matmul) the default run (``--scale 1``)
takes about 2 minutes and peaks at 3.5 GB of host memory; ``--scale 0.125`` takes about
30 seconds (2.9 GB, the 8192x8192 matrices). Barlow Twins and VICReg dominate both.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
from benchlib import markdown_table, plain_table, selected_names, time_fn

from jax_ssl import losses


class Case(NamedTuple):
    name: str
    build: Callable  # (rng, batch) -> {input name: numpy array}, in ``fn``'s argument order
    fn: Callable  # the inputs' arrays, positionally -> a scalar loss (or any output if no argnums)
    argnums: tuple[int, ...]  # inputs to differentiate for fwd+bwd; () = forward only


def normal(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def labels(rng, shape, classes):
    return rng.integers(0, classes, shape, dtype=np.int32)


def patch_mask(rng, batch, patches, ratio):
    """[batch, patches] float 0/1 with round(ratio·patches) ones per row, as MAE masks."""
    keep = np.argsort(rng.random((batch, patches)), axis=1) < round(ratio * patches)
    return keep.astype(np.float32)


# Each build gets ``batch(n)``: the batch-like size n times --scale.
CASES = [
    Case("info_nce", lambda r, b: {"z1": normal(r, b(4096), 128), "z2": normal(r, b(4096), 128)},
         losses.info_nce, (0, 1)),
    Case("moco_v3", lambda r, b: {"q": normal(r, b(4096), 256), "k": normal(r, b(4096), 256)},
         losses.moco_v3_loss, (0,)),
    Case("dino", lambda r, b: {"student": normal(r, 10, b(64), 65536),
                               "teacher": normal(r, 2, b(64), 65536),
                               "center": normal(r, 65536)},
         lambda s, t, c: losses.dino_loss(s, t, c)[0], (0,)),
    Case("swav", lambda r, b: {"scores": normal(r, 8, b(256), 3000)}, losses.swav_loss, (0,)),
    Case("swav_queue", lambda r, b: {"scores": normal(r, 8, b(256), 3000),
                                     "queue": normal(r, 2, b(3840), 3000)},
         lambda s, q: losses.swav_loss(s, queue_scores=q), (0,)),
    Case("sinkhorn", lambda r, b: {"scores": normal(r, b(256), 3000)}, losses.sinkhorn, ()),
    Case("mae", lambda r, b: {"pred": normal(r, b(64), 196, 768),
                              "target": normal(r, b(64), 196, 768),
                              "mask": patch_mask(r, b(64), 196, 0.75)},
         losses.mae_loss, (0,)),
    Case("ijepa", lambda r, b: {"pred": normal(r, b(256), 40, 384),
                                "target": normal(r, b(256), 40, 384)},
         losses.ijepa_loss, (0,)),
    Case("ibot_patch", lambda r, b: {"student": normal(r, b(64), 196, 8192),
                                     "teacher": normal(r, b(64), 196, 8192),
                                     "mask": patch_mask(r, b(64), 196, 0.3)},
         losses.ibot_patch_loss, (0,)),
    Case("koleo", lambda r, b: {"x": normal(r, b(256), 384)}, losses.koleo_loss, (0,)),
    Case("byol", lambda r, b: {"p": normal(r, b(4096), 256), "z": normal(r, b(4096), 256)},
         losses.byol_loss, (0,)),
    Case("barlow_twins", lambda r, b: {"z1": normal(r, b(2048), 8192),
                                       "z2": normal(r, b(2048), 8192)},
         losses.barlow_twins_loss, (0, 1)),
    Case("vicreg", lambda r, b: {"z1": normal(r, b(2048), 8192), "z2": normal(r, b(2048), 8192)},
         losses.vicreg_loss, (0, 1)),
    Case("pirl", lambda r, b: {"f": normal(r, b(256), 128), "g": normal(r, b(256), 128),
                               "bank": normal(r, 100_000, 128),
                               "idx": labels(r, b(256), 100_000),
                               "neg_idx": labels(r, (b(256), 4096), 100_000)},
         # log Z ≈ log(M) for near-orthogonal embeddings (nce_log_normalizer's estimate).
         lambda f, g, bank, i, n: losses.pirl_loss(f, g, bank, i, n, log_normalizer=11.5),
         (0, 1)),
    Case("memory_bank_update", lambda r, b: {"bank": normal(r, 100_000, 128),
                                             "idx": labels(r, b(256), 100_000),
                                             "emb": normal(r, b(256), 128)},
         losses.memory_bank_update, ()),
    Case("rotation", lambda r, b: {"logits": normal(r, b(1024), 4),
                                   "labels": labels(r, b(1024), 4)},
         losses.rotation_loss, (0,)),
    Case("jigsaw", lambda r, b: {"logits": normal(r, b(1024), 1000),
                                 "labels": labels(r, b(1024), 1000)},
         losses.jigsaw_loss, (0,)),
    Case("relative_position", lambda r, b: {"logits": normal(r, b(1024), 8),
                                            "labels": labels(r, b(1024), 8)},
         losses.relative_position_loss, (0,)),
    Case("patchify", lambda r, b: {"images": normal(r, b(64), 224, 224, 3)},
         lambda images: losses.patchify(images, 16), ()),
]


def describe(inputs, argnums):
    """'z1*,z2* 4096x128, mask 64x196': names grouped by shape, * on differentiated ones."""
    groups = []
    for i, (name, x) in enumerate(inputs.items()):
        name += "*" if i in argnums else ""
        shape = "x".join(map(str, x.shape)) or "scalar"
        if groups and groups[-1][1] == shape:
            groups[-1][0].append(name)
        else:
            groups.append(([name], shape))
    return ", ".join(f"{','.join(names)} {shape}" for names, shape in groups)


def run_case(case, scale, repeats, seed):
    inputs = case.build(np.random.default_rng(seed), lambda n: max(2, round(n * scale)))
    args = jax.block_until_ready(jax.device_put(list(inputs.values())))
    fwd_compile, fwd_s = time_fn(case.fn, args, repeats)
    compile_cell, bwd_cell = f"{fwd_compile:.2f}", "-"
    if case.argnums:
        grad_fn = jax.value_and_grad(case.fn, argnums=case.argnums)
        bwd_compile, bwd_s = time_fn(grad_fn, args, repeats)
        compile_cell, bwd_cell = f"{compile_cell}/{bwd_compile:.2f}", f"{1e3 * bwd_s:.2f}"
    return [case.name, describe(inputs, case.argnums), compile_cell, f"{1e3 * fwd_s:.2f}",
            bwd_cell]


HEADER = ["loss", "shapes", "compile s", "fwd ms", "fwd+bwd ms"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies each case's batch-like dimension (default 1.0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    only = selected_names(parser, [c.name for c in CASES], args.only)
    if args.scale <= 0 or args.repeats < 1:
        parser.error("--scale must be > 0 and --repeats >= 1")

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}, "
          f"scale {args.scale:g}, repeats {args.repeats} (median), compile s = fwd/fwd+bwd")
    jax.jit(lambda x: x + 1).lower(np.float32(0)).compile()  # JAX's one-off start-up cost
    rows = []
    for case in CASES:
        if case.name in only:
            print(f"{case.name}...", file=sys.stderr, flush=True)
            rows.append(run_case(case, args.scale, args.repeats, args.seed))
    print(plain_table(HEADER, rows, text_columns=2))
    if args.markdown:
        print()
        print(markdown_table(HEADER, rows, text_columns=2))


if __name__ == "__main__":
    main()
