"""Benchmark of the full training step of every method: steps/s, images/s, FLOP/s.

Usage::

    python experiments/bench/train.py [--only simclr,dino] [--dataset digits] [--batch N]
                                      [--repeats 5] [--dtype float32] [--markdown]

For each method with a ``configs/<method>_<dataset>.py`` the config is built as is
(``--batch`` and ``--dtype`` override it), the method's state and optimizer are
initialised, and the trainer's own jitted step (``jax_ssl.train.make_train_step``: loss,
gradients, optimizer, EMA/center/queue updates, over a mesh of every local device) is
timed on a synthetic batch already on the devices, shaped like the config's recipe
output: input-pipeline cost is excluded (see input.py for that). Times are medians of
``--repeats`` steps after one warm-up. "GFLOP/img" is XLA's ``cost_analysis()`` of the
whole compiled step divided by the batch (forward, backward and update, every HLO op);
"TFLOP/s" = that × img/s; the last line gives a plain jitted 2048² float32 matmul's
FLOP/s on the same backend, the bar model FLOP/s are compared with.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import benchlib  # noqa: E402

from jax_ssl import methods, optim, parallel, train  # noqa: E402
from jax_ssl.config import from_file  # noqa: E402
from jax_ssl.data import recipes  # noqa: E402
from jax_ssl.models import layers  # noqa: E402

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


def synthetic_batch(config, batch_size, mesh):
    """Seeded N(0, 1) arrays shaped like the recipe's output, sharded over ``data``."""
    recipe = recipes.make_recipe(config.data.recipe, **config.data.recipe_kwargs)
    example = recipe(tf.zeros([64, 64, 3], tf.uint8), tf.zeros([2], tf.int64))
    rng = np.random.default_rng(0)
    batch = {k: rng.standard_normal((batch_size, *v.shape), np.float32)
             for k, v in example.items()}
    batch["label"] = np.zeros(batch_size, np.int32)
    return jax.device_put(batch, parallel.batch_sharding(mesh))


def _flops(compiled):
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return (cost or {}).get("flops")


def step_flops(compiled, step, state, batch):
    """XLA's FLOP count of the compiled step. Its cost analysis counts a loop's body once,
    so where the step loops (the CPU filter gradient's scan over groups of images) the
    count comes from a second compile whose scans run once over the whole batch: the
    same arithmetic, not the program that is timed."""
    if " while(" not in compiled.as_text():
        return _flops(compiled)
    group_bytes = layers.PATCH_GROUP_BYTES
    layers.PATCH_GROUP_BYTES = 1 << 62
    jax.clear_caches()  # or the cached trace, made with the groups, is lowered again
    try:
        return _flops(step.lower(state, batch).compile())
    finally:
        layers.PATCH_GROUP_BYTES = group_bytes
        jax.clear_caches()


def bench_method(config, repeats):
    mesh = parallel.data_mesh(jax.local_devices())
    batch = synthetic_batch(config, config.batch_size, mesh)
    method = methods.get(config.method)
    params, method_state = method.init(jax.random.PRNGKey(0), config,
                                       jax.tree.map(lambda x: np.asarray(x[:2]), batch))
    tx, lr = optim.optimizer(config, total_steps=10_000, steps_per_epoch=100)
    state = jax.device_put({"step": jnp.zeros((), jnp.int32), "params": params,
                            "opt_state": tx.init(params), "method_state": method_state},
                           parallel.replicated_sharding(mesh))
    step = train.make_train_step(method, tx, config, mesh, lr, total_steps=10_000,
                                 steps_per_epoch=100)
    start = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    flops = step_flops(compiled, step, state, batch)
    state, _ = compiled(state, batch)
    jax.block_until_ready(state)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    params_count = sum(x.size for x in jax.tree.leaves(params))
    return compile_s, seconds, flops, params_count


def matmul_tflops(n=2048):
    a = jnp.ones((n, n), jnp.float32)
    _, seconds = benchlib.time_fn(lambda a: a @ a, (a,), 5)
    return 2 * n ** 3 / seconds / 1e12


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--dtype", default="")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    available = [m for m in methods.NAMES if (CONFIGS / f"{m}_{args.dataset}.py").exists()]
    rows = []
    for name in benchlib.selected_names(parser, available, args.only):
        config = from_file(CONFIGS / f"{name}_{args.dataset}.py")
        if args.batch:
            config.batch_size = args.batch
        if args.dtype:
            config.dtype = args.dtype
        compile_s, seconds, flops, params = bench_method(config, args.repeats)
        b = config.batch_size
        per_image = flops / b / 1e9 if flops else float("nan")
        rows.append([name, config.model.backbone, config.data.recipe, config.dtype, str(b),
                     f"{params / 1e6:.2f}", f"{compile_s:.1f}", f"{1000 * seconds:.0f}",
                     f"{1 / seconds:.2f}", f"{b / seconds:.0f}", f"{per_image:.3f}",
                     f"{per_image * b / seconds / 1e3:.3f}"])
        print(f"  {name}: {1000 * seconds:.0f} ms/step", file=sys.stderr, flush=True)
    header = ["method", "backbone", "recipe", "dtype", "batch", "M params", "compile s",
              "ms/step", "steps/s", "img/s", "GFLOP/img", "TFLOP/s"]
    table = benchlib.markdown_table if args.markdown else benchlib.plain_table
    print(f"jax {jax.__version__}, {jax.device_count()} {jax.default_backend()} device(s), "
          f"configs/*_{args.dataset}.py, median of {args.repeats} steps")
    print(table(header, rows, 4))
    print(f"reference: jitted 2048x2048 float32 matmul {matmul_tflops():.3f} TFLOP/s")


if __name__ == "__main__":
    main()
