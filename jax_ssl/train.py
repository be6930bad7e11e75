r"""The trainer: mesh → input → model → update step → checkpoint → loop (DESIGN.md §2).

    jax-ssl-train --config configs/simclr_fashion_mnist.py --workdir /tmp/run \
        [--config.batch_size=512 ...]        # or: python -m jax_ssl.train ...

Running the same command again resumes from the latest complete checkpoint in
``WORKDIR/checkpoints``. On a TPU pod, run it on every worker (experiments/tpu_pod.sh).
The command line itself (flags, ``--print_config``) is ``jax_ssl/cli.py``.
"""
from __future__ import annotations

import functools
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow as tf
from jax import lax

from jax_ssl import checkpoints, methods, optim, parallel
from jax_ssl.data import pipeline, recipes, sources
from jax_ssl.metric_writer import MetricWriter


class NonFiniteLoss(RuntimeError):
    pass


def _log(*args):
    if jax.process_index() == 0:
        print(*args, flush=True)


def sample_batch(dataset) -> dict:
    """Zeros shaped like two examples of ``dataset``'s batches: enough to init a model."""
    return jax.tree.map(lambda spec: np.zeros((2, *spec.shape[1:]), spec.dtype.as_numpy_dtype),
                        dataset.element_spec)


def make_train_step(method, tx, config, mesh, learning_rate, *, total_steps: int,
                    steps_per_epoch: int):
    """The jitted step ``(state, batch) -> (state, metrics)`` over the ``data`` mesh.

    Each device runs the method's loss on its shard under ``jax.shard_map``; the losses
    reduce over ``data``, so each device's gradient of the replicated parameters is the
    global-batch gradient. With ``config.grad_accum_steps`` k > 1 the local batch is
    split into k micro-batches whose gradients are averaged.
    """
    loss_fn = functools.partial(method.loss_fn, config=config, axis_name=parallel.DATA_AXIS)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    accum = config.get("grad_accum_steps", 1)
    schedule = {"total_steps": total_steps, "steps_per_epoch": steps_per_epoch}

    def gradients(params, method_state, batch, rng, step):
        if accum == 1:
            return grad_fn(params, method_state, batch, rng, step)
        micro = jax.tree.map(lambda x: x.reshape(accum, -1, *x.shape[1:]), batch)

        def one(carry, xs):
            method_state, grad_sum = carry
            (loss, (method_state, metrics)), grads = grad_fn(
                params, method_state, xs[0], xs[1], step)
            return (method_state, jax.tree.map(jnp.add, grad_sum, grads)), (loss, metrics)

        zeros = jax.tree.map(jnp.zeros_like, params)
        (method_state, grad_sum), (loss, metrics) = lax.scan(
            one, (method_state, zeros), (micro, jax.random.split(rng, accum)))
        mean = functools.partial(jnp.mean, axis=0)
        return (mean(loss), (method_state, jax.tree.map(mean, metrics))), jax.tree.map(
            lambda g: g / accum, grad_sum)

    def per_device(state, batch):
        step = state["step"]
        rng = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), step),
                                 lax.axis_index(parallel.DATA_AXIS))
        (loss, (method_state, metrics)), grads = gradients(
            state["params"], state["method_state"], batch, rng, step)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        if hasattr(method, "trainable"):  # tensors frozen early in training
            trainable = method.trainable(params, step, config=config, **schedule)
            params, opt_state = optim.keep_frozen(tx, trainable, params, state["params"],
                                                  opt_state, state["opt_state"])
        if hasattr(method, "project_params"):  # e.g. SwAV's prototypes back to unit norm
            params = method.project_params(params)
        if hasattr(method, "after_update"):
            method_state = method.after_update(params, method_state, step, config=config,
                                               **schedule)
        metrics = {**metrics, "loss": loss, "learning_rate": learning_rate(step),
                   "grad_norm": optax.tree.norm(grads)}
        new_state = {"step": step + 1, "params": params, "opt_state": opt_state,
                     "method_state": method_state}
        return new_state, metrics

    step_fn = jax.shard_map(per_device, mesh=mesh, in_specs=(parallel.REPLICATED_SPEC,
                                                             parallel.BATCH_SPEC),
                            out_specs=(parallel.REPLICATED_SPEC, parallel.REPLICATED_SPEC))
    return jax.jit(step_fn, donate_argnums=0)


def _format_time(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints).

    Returns: the last logged metrics and the final ``state``.
    """
    # --- Mesh: every device of every process on one 'data' axis.
    parallel.initialize_distributed(config.get("distributed"))
    mesh = parallel.data_mesh()
    parallel.check_batch_divisible(config.batch_size, mesh)
    # tf.io.gfile: the workdir may be a bucket (gs://...) on TPU pods
    tf.io.gfile.makedirs(workdir)

    # --- Input: this process's share of each global batch, resumable by step.
    data = config.data
    source = sources.get_source(data.source, data.split, data_dir=data.get("data_dir"),
                                image_size=data.get("image_size"))
    recipe = recipes.make_recipe(data.recipe, **data.get("recipe_kwargs", {}))
    steps_per_epoch = max(source.num_examples // config.batch_size, 1)
    total_steps = config.get("total_steps") or round(config.epochs * steps_per_epoch)

    def batches_from(step):
        return pipeline.train_batches(source, recipe, global_batch_size=config.batch_size,
                                      seed=config.seed, start_step=step)

    # --- Model: the method's networks, optimizer and state, replicated on every device.
    method = methods.get(config.method)
    params, method_state = method.init(jax.random.PRNGKey(config.seed), config,
                                       sample_batch(batches_from(0)))
    tx, learning_rate = optim.optimizer(config, total_steps, steps_per_epoch)
    state = {"step": jnp.zeros((), jnp.int32), "params": params,
             "opt_state": tx.init(params), "method_state": method_state}
    state = jax.device_put(state, parallel.replicated_sharding(mesh))
    num_params = sum(x.size for x in jax.tree.leaves(params))

    # --- Update step.
    train_step = make_train_step(method, tx, config, mesh, learning_rate,
                                 total_steps=total_steps, steps_per_epoch=steps_per_epoch)

    # --- Checkpoints: resume from the latest complete one.
    ckpt = config.checkpoint
    manager = checkpoints.manager(workdir, save_every=ckpt.every_steps, keep=ckpt.keep,
                                  keep_every=ckpt.get("keep_every") or None)
    if jax.process_index() == 0:
        with tf.io.gfile.GFile(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json(indent=2))
    restored = checkpoints.restore_state(manager, state)
    if restored is not None:
        state = restored
    start = int(state["step"])
    _log(f"{config.method}: {num_params:,} parameters, {source.name} {source.split} "
         f"({source.num_examples:,} images), {total_steps:,} steps of {config.batch_size} on "
         f"{jax.device_count()} device(s) in {jax.process_count()} process(es)"
         + (f"; resumed at step {start}" if start else ""))

    preempted = []
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))

    # --- Loop.
    writer = MetricWriter(workdir)
    batches = pipeline.global_batches(batches_from(start), mesh)
    log_every = config.get("log_every", 50)
    window_start, window_steps, metrics = time.perf_counter(), 0, {}
    try:
        for step in range(start, total_steps):
            state, step_metrics = train_step(state, next(batches))
            loss = float(step_metrics["loss"])
            if not np.isfinite(loss):
                raise NonFiniteLoss(
                    f"the loss became {loss} at step {step}; stopping. The last good "
                    f"checkpoint (step {manager.latest_step()}) in {workdir} is kept; lower "
                    "the learning rate or enable gradient clipping and resume.")
            window_steps += 1
            done = step + 1
            if done % log_every == 0 or done == total_steps:
                elapsed = time.perf_counter() - window_start
                metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                metrics["images_per_second"] = window_steps * config.batch_size / elapsed
                metrics["epoch"] = done / steps_per_epoch
                writer.write(done, metrics)
                eta = (total_steps - done) * elapsed / window_steps
                _log(f"step {done}/{total_steps} epoch {metrics['epoch']:.2f} "
                     f"loss {metrics['loss']:.4f} lr {metrics['learning_rate']:.3g} "
                     f"{metrics['images_per_second']:.0f} img/s ETA {_format_time(eta)}")
                window_start, window_steps = time.perf_counter(), 0
            checkpoints.save(manager, done, state, config,
                             force=done == total_steps or bool(preempted))
            if preempted:
                _log(f"SIGTERM: saved step {done}; exiting so the job can resume.")
                break
        manager.wait_until_finished()
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        writer.close()
        manager.close()
    return {"metrics": metrics, "state": state, "mesh": mesh}


if __name__ == "__main__":
    from jax_ssl import cli

    sys.exit(cli.train())
