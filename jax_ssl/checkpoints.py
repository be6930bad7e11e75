"""Orbax checkpoints of the full train state in ``WORKDIR/checkpoints`` (DESIGN.md §1).

Each checkpoint step holds two items: ``state`` (step, params, optimizer state, the
method's state such as BN statistics, EMA teacher, DINO's center or SwAV's queue) and
``config`` (the run's config as JSON, so evaluation can rebuild the model). Orbax writes
a step into a temporary directory and renames it when complete, so a crash mid-write
leaves the previous checkpoint as the latest; saves run in the background.

Importing this module re-registers Orbax's ``jax.Array`` handler, process-wide, so that
replicated arrays under ``MIN_REPLICA_SLICE_BYTES`` per replica are written by one replica.
"""
from __future__ import annotations

import contextlib
import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp
import tensorflow as tf
from absl import logging
from jax.experimental import multihost_utils

# Orbax saves a replicated array "replica-parallel": each replica writes one slice, cut
# by an eager slicing op per array and device. Below a megabyte per slice the slicing
# costs more than the parallel write gains (orbax#2934): 6 saves of a small ViT's state on
# 8 devices took 10.7 s instead of 0.65 s. Larger arrays (big models on pods) still split.
MIN_REPLICA_SLICE_BYTES = 1 << 20


def _register_array_handler() -> None:
    default = ocp.type_handlers.get_type_handler(jax.Array)
    handler = ocp.type_handlers.ArrayHandler(
        min_slice_bytes_for_replica_parallel=MIN_REPLICA_SLICE_BYTES,
        # keep the default handler's per-host array metadata (chunk shapes)
        array_metadata_store=getattr(default, "_array_metadata_store", None))
    # Orbax warns on every override ("Type handler registry ... overriding jax.Array"):
    # this one is deliberate, and the warning would open every command's output.
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)
    finally:
        logging.set_verbosity(verbosity)


_register_array_handler()


def directory(workdir: str) -> str:
    """``WORKDIR/checkpoints``, made absolute for local paths (Orbax requires it)."""
    workdir = os.fspath(workdir)
    if "://" not in workdir:
        workdir = os.path.abspath(workdir)
    return os.path.join(workdir, "checkpoints")


def manager(workdir: str, *, save_every: int = 1000, keep: int = 3,
            keep_every: int | None = None, read_only: bool = False) -> ocp.CheckpointManager:
    """A manager saving at the multiples of ``save_every`` (``save(..., force=True)`` saves
    any step), keeping the last ``keep`` and every ``keep_every``-th step."""
    if read_only:
        options = ocp.CheckpointManagerOptions(read_only=True, create=False,
                                               save_interval_steps=0, max_to_keep=None,
                                               enable_async_checkpointing=False)
        # Orbax warns "Given directory is read only" for each read-only manager, which
        # would open every training run (its workdir check) and every evaluation.
        quiet = _absl_level(logging.ERROR)
    else:
        # Orbax's default policy adds InitialSavePolicy, which saves the first step of a
        # workdir without checkpoints: a step-1 checkpoint no setting asked for.
        policies = ocp.checkpoint_managers
        options = ocp.CheckpointManagerOptions(
            save_decision_policy=policies.AnySavePolicy([
                policies.FixedIntervalPolicy(save_every),
                policies.PreemptionCheckpointingPolicy()]),
            max_to_keep=keep, keep_period=keep_every)
        quiet = contextlib.nullcontext()
    with quiet:
        return ocp.CheckpointManager(directory(workdir), options=options,
                                     item_names=("state", "config"))


@contextlib.contextmanager
def _absl_level(level: int):
    """absl logging at ``level`` or above only, inside the block."""
    verbosity = logging.get_verbosity()
    logging.set_verbosity(level)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def save(mngr: ocp.CheckpointManager, step: int, state, config, *, force: bool = False
         ) -> bool:
    """Starts saving ``state`` at ``step`` if due (or ``force``); returns whether it did."""
    return mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        config=ocp.args.JsonSave(json.loads(config.to_json()))), force=force)


class DamagedCheckpoint(ValueError):
    """A complete checkpoint step whose files cannot be read back (deleted, truncated)."""


def _restore(mngr: ocp.CheckpointManager, step: int, **items) -> dict:
    try:
        return mngr.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # Orbax, TensorStore and JSON each raise their own types
        reason = (str(e).strip().splitlines() or [""])[0][:200]
        raise DamagedCheckpoint(f"checkpoint {step} in {mngr.directory} cannot be read "
                                f"({type(e).__name__}: {reason})") from e


def restore_state(mngr: ocp.CheckpointManager, step: int, target=None):
    """The state saved at ``step``; ``DamagedCheckpoint`` when it cannot be read.

    With ``target`` (arrays or ``jax.ShapeDtypeStruct``s with shardings) it is laid out
    like it; without, it comes back as saved: nested dicts of arrays.
    """
    abstract = None if target is None else jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return _restore(mngr, step, state=ocp.args.StandardRestore(abstract))["state"]


def restore_config(mngr: ocp.CheckpointManager, step: int) -> ml_collections.ConfigDict:
    """The config saved with checkpoint ``step``; ``DamagedCheckpoint`` when unreadable."""
    return ml_collections.ConfigDict(_restore(mngr, step, config=ocp.args.JsonRestore())["config"])


def newest_intact(mngr: ocp.CheckpointManager, read, on_damaged) -> tuple:
    """``(step, read(step))`` for the newest step that ``read`` can read, or (None, None).

    Each newer step that raises ``DamagedCheckpoint`` goes to ``on_damaged(step, error)``
    first: a crash or a full disk must not cost the run its older, intact checkpoints.
    """
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            return step, read(step)
        except DamagedCheckpoint as e:
            on_damaged(step, e)
    return None, None


def set_aside(mngr: ocp.CheckpointManager, step: int, workdir: str, reason: str) -> str:
    """Moves checkpoint ``step`` to ``WORKDIR/<reason>/<step>`` (out of the manager's sight,
    kept for inspection: never deleted) and returns that path. Every process calls it."""
    mngr.wait_until_finished()
    destination = os.path.join(os.path.dirname(directory(workdir)), reason, str(step))
    if jax.process_index() == 0:
        tf.io.gfile.makedirs(os.path.dirname(destination))
        tf.io.gfile.rename(os.path.join(directory(workdir), str(step)), destination,
                           overwrite=True)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    mngr.reload()
    return destination
