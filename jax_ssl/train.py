r"""The trainer: mesh → input → model → update step → checkpoint → loop (DESIGN.md §2).

    jax-ssl-train --config configs/simclr_fashion_mnist.py --workdir /tmp/run \
        [--config.batch_size=512 ...]        # or: python -m jax_ssl.train ...

Running the same command again resumes from the latest complete checkpoint in
``WORKDIR/checkpoints``. On a TPU pod, run it on every worker (experiments/tpu_pod.sh).
The command line itself (flags, ``--print_config``) is ``jax_ssl/cli.py``.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import sys
from time import perf_counter

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow as tf
from jax import lax

from jax_ssl import checkpoints, methods, optim, parallel
from jax_ssl import config as config_lib
from jax_ssl.config import flat_items
from jax_ssl.data import device_augment, pipeline, recipes, sources
from jax_ssl.methods import common
from jax_ssl.metric_writer import MetricWriter


class NonFiniteLoss(RuntimeError):
    pass


class IncompatibleWorkdir(ValueError):
    pass


def _log(*args):
    if jax.process_index() == 0:
        print(*args, flush=True)


def sample_batch(dataset) -> dict:
    """Zeros shaped like two examples of ``dataset``'s batches: enough to init a model."""
    return jax.tree.map(lambda spec: np.zeros((2, *spec.shape[1:]), spec.dtype.as_numpy_dtype),
                        dataset.element_spec)


def augment_on_device(device_recipe, seed: int):
    """``batch -> batch``: the raw images of ``pipeline.train_batches(source, None)``
    (``image``, ``position``, ``label``) to the recipe's views and ``label``, inside the
    step. Each example's key is the run's seed folded with its position in the stream of
    examples, so its views do not depend on the number of devices or on resuming."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 2)

    def augment(batch):
        keys = jax.vmap(functools.partial(jax.random.fold_in, base))(batch["position"])
        return {**device_recipe(batch["image"], keys), "label": batch["label"]}
    return augment


def state_specs(state: dict, method) -> dict:
    """The state's ``PartitionSpec``s: replicated, but for the method-state entries the
    method splits over the devices by rows (``SHARDED_STATE``: PIRL's memory bank)."""
    specs = jax.tree.map(lambda _: parallel.REPLICATED_SPEC, state)
    for key in getattr(method, "SHARDED_STATE", ()):
        specs["method_state"][key] = parallel.BATCH_SPEC
    return specs


def place_state(state: dict, method, mesh) -> dict:
    """``state`` on the mesh's devices as ``state_specs`` lays it out."""
    devices = mesh.devices.size
    for key in getattr(method, "SHARDED_STATE", ()):
        rows = state["method_state"][key].shape[0]
        if rows % devices:
            raise ValueError(f"the method's {key} has {rows} rows, which do not split over "
                             f"{devices} devices; use a number of devices dividing {rows}.")
    return jax.device_put(state, jax.tree.map(
        lambda spec: jax.sharding.NamedSharding(mesh, spec), state_specs(state, method)))


def make_train_step(method, tx, config, mesh, learning_rate, *, total_steps: int,
                    steps_per_epoch: int, augment=None, specs=None):
    """The jitted step ``(state, batch) -> (state, metrics)`` over the ``data`` mesh.

    Each device runs the method's loss on its shard under ``jax.shard_map``; the losses
    reduce over ``data``, so each device's gradient of the replicated parameters is the
    global-batch gradient. With ``config.grad_accum_steps`` k > 1 the local batch is
    split into k micro-batches whose gradients are averaged. ``augment`` (from
    :func:`augment_on_device`) first turns each device's raw images into views.
    ``specs``: the state's layout, from :func:`state_specs` (default: all replicated).
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
        if augment is not None:
            batch = augment(batch)
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

    specs = parallel.REPLICATED_SPEC if specs is None else specs
    step_fn = jax.shard_map(per_device, mesh=mesh, in_specs=(specs, parallel.BATCH_SPEC),
                            out_specs=(specs, parallel.REPLICATED_SPEC))
    return jax.jit(step_fn, donate_argnums=0)


def _format_time(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _progress_line(done: int, total_steps: int, metrics: dict, eta_seconds: float | None
                  ) -> str:
    """The progress line of step ``done`` (about 80 characters); images/s and ETA only
    where they were measured (``eta_seconds``)."""
    line = (f"step {done}/{total_steps} epoch {metrics['epoch']:.2f} "
            f"loss {metrics['loss']:.4f} lr {metrics['learning_rate']:.3g}")
    if eta_seconds is None:
        return line
    return (f"{line} {metrics['images_per_second']:.0f} img/s "
            f"ETA {_format_time(eta_seconds)}")


# Config keys a resumed run may change: how long it trains, what it logs and keeps, which
# processes run it, where the data files are, what evaluation reads, how a step is computed
# (micro-batches, compute dtype; parameters stay float32; augmentation on the device or the
# host: the same distributions), and the learning rate schedule's
# values (to resume a diverged run with a lower one). Any other difference would build
# another state or continue this one under another recipe.
RESUMABLE_KEYS = ("epochs", "total_steps", "log_every", "grad_accum_steps", "dtype",
                  "checkpoint", "distributed", "data.data_dir", "data.eval_split",
                  "data.augment_on_device",
                  "data.eval_resize_size", "optimizer.base_learning_rate",
                  "optimizer.final_learning_rate", "optimizer.warmup_epochs")


def _resumable(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUMABLE_KEYS)


UNSET = object()  # a key the other config does not have


def config_differences(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict
                       ) -> dict[str, tuple]:
    """``{key: (saved value, new value)}`` for the keys outside ``RESUMABLE_KEYS`` whose
    values differ: the method and model first, then the other keys both configs have, then
    those one lacks (``UNSET``), e.g. another method's section."""
    def leaves(c):  # values as saved: through JSON, tuples become lists
        return dict(flat_items(ml_collections.ConfigDict(json.loads(c.to_json()))))
    old, new = leaves(saved), leaves(config)
    differing = [key for key in dict.fromkeys([*new, *old]) if not _resumable(key)
                 and old.get(key, UNSET) != new.get(key, UNSET)]
    differing.sort(key=lambda key: (key.split(".")[0] not in ("method", "model"),
                                    key not in old or key not in new))
    return {key: (old.get(key, UNSET), new.get(key, UNSET)) for key in differing}


def _brief(value) -> str:
    text = "unset" if value is UNSET else repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def check_resumable(saved: ml_collections.ConfigDict | None, config, workdir: str) -> None:
    """Raises ``IncompatibleWorkdir`` if ``workdir``'s run (its ``saved`` config) is not
    one that ``config`` may continue."""
    differences = config_differences(saved, config) if saved is not None else {}
    if not differences:
        return
    shown = [f"{key} {_brief(old)} -> {_brief(new)}"
             for key, (old, new) in list(differences.items())[:3]]
    more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
    raise IncompatibleWorkdir(
        f"{workdir} holds a run with another config ({', '.join(shown)}{more}); give this "
        f"run another --workdir, or set those keys as that run has them "
        f"({os.path.join(workdir, 'config.json')}).")


def _saved_run(workdir: str, manager) -> tuple[int | None, ml_collections.ConfigDict | None]:
    """(step, config) of the run in ``workdir``: its newest readable checkpoint's, else
    (None, its ``config.json``) for a run stopped before its first checkpoint, else
    (None, None)."""
    step, config = checkpoints.newest_intact(
        manager, functools.partial(checkpoints.restore_config, manager),
        on_damaged=lambda step, error: _log(f"{error}; the run's config is read from an "
                                            "older checkpoint"))
    if config is not None:
        return step, config
    path = os.path.join(workdir, "config.json")
    if not tf.io.gfile.exists(path):
        return None, None
    with tf.io.gfile.GFile(path) as f:
        return None, ml_collections.ConfigDict(json.loads(f.read()))


def _write_atomically(path: str, text: str) -> None:
    """A reader sees the old file or the new one, never a half-written one."""
    temporary = path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains ``config`` in ``workdir``, resuming from its latest checkpoint.

    Before anything in ``workdir`` is written, its run is compared with ``config``: a run
    whose config differs in a key outside ``RESUMABLE_KEYS`` (the method, its section,
    the model, data, optimizer, batch size or seed) is refused with
    ``IncompatibleWorkdir``; the length (``epochs``, ``total_steps``), ``log_every``,
    ``checkpoint.*``, ``distributed.*``, ``data.data_dir``, the evaluation split and
    resize, ``grad_accum_steps``, ``dtype`` and the learning rate schedule's values
    (``optimizer.base_learning_rate``, ``final_learning_rate``, ``warmup_epochs``) may
    change on resume. A workdir whose
    latest checkpoint is at or past ``total_steps`` is finished: nothing is built or
    written. Checkpoints are saved at the multiples of ``checkpoint.every_steps``, at the
    final step and on SIGTERM.

    Returns: ``metrics`` (the last logged ones), the final ``state`` and the ``mesh``;
    for a finished run no metrics and ``state`` None.
    """
    # --- Mesh: every device of every process on one 'data' axis.
    config_lib.validate(config)  # before anything is built or written
    parallel.initialize_distributed(config.get("distributed"))
    mesh = parallel.data_mesh()
    parallel.check_batch_divisible(config.batch_size, mesh)
    config_lib.validate(config, device_count=mesh.devices.size)  # micro-batches per device

    # --- The workdir's run, if any: the same one (resume), finished, or another (refused).
    if tf.io.gfile.exists(workdir) and not tf.io.gfile.isdir(workdir):
        raise IncompatibleWorkdir(f"--workdir {workdir} is a file; give a directory (new or "
                                  "holding this run).")
    previous = checkpoints.manager(workdir, read_only=True)
    saved_step, saved_config = _saved_run(workdir, previous)
    check_resumable(saved_config, config, workdir)

    # --- Input: this process's share of each global batch, resumable by step.
    data = config.data
    source = sources.get_source(data.source, data.split, data_dir=data.get("data_dir"),
                                image_size=data.get("image_size"))
    steps_per_epoch = max(source.num_examples // config.batch_size, 1)
    total_steps = config.get("total_steps") or round(config.epochs * steps_per_epoch)
    if saved_step is not None and saved_step >= total_steps:
        _log(f"{workdir}: the run is already complete (checkpoint at step {saved_step}, "
             f"{total_steps} steps asked); evaluate it with jax-ssl-eval --workdir {workdir}")
        return {"metrics": {}, "state": None, "mesh": mesh}
    method = methods.get(config.method)
    indexed = getattr(method, "USES_EXAMPLE_INDEX", False)  # PIRL's memory bank rows
    recipe_kwargs = data.get("recipe_kwargs", {})
    recipe = recipes.make_recipe(data.recipe, **recipe_kwargs)
    # In-memory images are augmented inside the step (recipes that have a device form),
    # the rest in tf.data.
    augment = None
    if data.get("augment_on_device", True) and getattr(source, "image_shape", None) \
            and data.recipe in device_augment.DEVICE_RECIPES:
        augment = augment_on_device(
            device_augment.make_device_recipe(data.recipe, **recipe_kwargs), config.seed)

    def batches_from(step):
        return pipeline.train_batches(source, None if augment else recipe,
                                      global_batch_size=config.batch_size, seed=config.seed,
                                      start_step=step, with_index=indexed)

    # --- Model: the method's networks, optimizer and state, replicated on every device.
    example = sample_batch(batches_from(0))
    if augment:
        example = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                               jax.eval_shape(augment, example))
    params, method_state = common.init_method(method, jax.random.PRNGKey(config.seed), config,
                                              example, num_examples=source.num_indices)
    tx, learning_rate = optim.optimizer(config, total_steps, steps_per_epoch)
    state = {"step": jnp.zeros((), jnp.int32), "params": params,
             "opt_state": tx.init(params), "method_state": method_state}
    state = place_state(state, method, mesh)
    num_params = sum(x.size for x in jax.tree.leaves(params))

    # --- Update step.
    train_step = make_train_step(method, tx, config, mesh, learning_rate,
                                 total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                                 augment=augment, specs=state_specs(state, method))

    # --- Checkpoints: resume from the latest complete one.
    # tf.io.gfile: the workdir may be a bucket (gs://...) on TPU pods
    tf.io.gfile.makedirs(workdir)
    if jax.process_index() == 0:
        _write_atomically(os.path.join(workdir, "config.json"), config.to_json(indent=2))
    ckpt = config.checkpoint
    manager = checkpoints.manager(workdir, save_every=ckpt.every_steps, keep=ckpt.keep,
                                  keep_every=ckpt.get("keep_every") or None)

    def set_aside_damaged(step, error):
        kept = checkpoints.set_aside(manager, step, workdir, "damaged")
        _log(f"{error}: moved to {kept} (kept); resuming from an older checkpoint")

    def read(step):  # the config too: evaluation needs both
        checkpoints.restore_config(manager, step)
        return checkpoints.restore_state(manager, step, state)
    _, restored = checkpoints.newest_intact(manager, read, on_damaged=set_aside_damaged)
    if restored is not None:
        state = restored
    start = int(state["step"])
    _log(f"{config.method}: {num_params:,} parameters, {source.name} {source.split} "
         f"({source.num_examples:,} images), {total_steps:,} steps of {config.batch_size} on "
         f"{jax.device_count()} device(s) in {jax.process_count()} process(es)"
         + (f"; resumed at step {start}" if start else ""))

    preempted = []
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))

    # --- Loop. The first step is logged without images/s: it waits for the compilation
    # and the input's warm-up; the throughput window opens after it.
    writer = MetricWriter(workdir)
    batches = pipeline.global_batches(batches_from(start), mesh)
    log_every = config.get("log_every", 50)
    metrics, window_start, window_steps = {}, None, 0
    try:
        first_batch = next(batches)
        _log("compiling the train step ...")
        compile_start = perf_counter()
        train_step = train_step.lower(state, first_batch).compile()
        _log(f"compiled in {perf_counter() - compile_start:.1f} s")
        batches = itertools.chain([first_batch], batches)
        for step in range(start, total_steps):
            state, step_metrics = train_step(state, next(batches))
            loss = float(step_metrics["loss"])
            if not np.isfinite(loss):
                # checkpoint `step` holds the state this loss was computed from: resuming
                # from it would diverge at once
                diverged = (checkpoints.set_aside(manager, step, workdir, "diverged")
                            if step in manager.all_steps() else None)
                kept = manager.latest_step()
                raise NonFiniteLoss(
                    f"the loss became {loss} at step {step}; stopping. "
                    + (f"Its checkpoint was moved to {diverged}. " if diverged else "")
                    + ("No checkpoint was saved before it" if kept is None else
                       f"The last good checkpoint (step {kept}) in {workdir} is kept")
                    + ": lower the learning rate (optimizer.base_learning_rate) and run "
                    "again to resume.")
            window_steps += 1
            done = step + 1
            if window_start is None or done % log_every == 0 or done == total_steps:
                metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                metrics["epoch"] = done / steps_per_epoch
                eta = None
                if window_start is not None:
                    elapsed = perf_counter() - window_start
                    metrics["images_per_second"] = window_steps * config.batch_size / elapsed
                    eta = (total_steps - done) * elapsed / window_steps
                writer.write(done, metrics)
                _log(_progress_line(done, total_steps, metrics, eta))
                window_start, window_steps = perf_counter(), 0
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
