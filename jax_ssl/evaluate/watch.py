"""Watch mode: a sidecar that evaluates each new complete checkpoint of a training run once.

    python -m jax_ssl.evaluate --workdir runs/dino --watch [--poll_seconds 60]

Every ``poll_seconds`` it lists ``WORKDIR/checkpoints`` the way restoring does (a
read-only Orbax manager: a step still in its ``*.orbax-checkpoint-tmp-*`` directory, or
on object stores one without its ``commit_success.txt`` marker, is not complete and not
listed), evaluates each complete step it has not done yet, oldest first, and records it
in ``WORKDIR/eval/watch_done.json`` (rewritten atomically), so a restarted watcher
carries on where it stopped. A checkpoint that the trainer deletes (``keep``) between
listing and restoring is logged and skipped. Until the first complete checkpoint
appears the watcher waits without counting idle polls, so it can be started before the
trainer. Each evaluated step prints one short line of headline numbers; all scalars go to
``WORKDIR/eval/metrics.jsonl`` and TensorBoard events in ``WORKDIR/eval/tensorboard``;
each evaluation's full result to ``WORKDIR/eval/step_N.json`` (``job.evaluate``).
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable

import jax
import numpy as np
import tensorflow as tf
from jax.experimental import multihost_utils

from jax_ssl import checkpoints
from jax_ssl.metric_writer import MetricWriter

DONE_FILE = "watch_done.json"
NOTHING_NEW, NO_CHECKPOINT_YET = -1, -2  # what a poll finds instead of a step to evaluate


def _log(message: str):
    if jax.process_index() == 0:
        print(message, flush=True)


def eval_dir(workdir: str) -> str:
    return os.path.join(workdir, "eval")


def complete_steps(workdir: str) -> list[int]:
    """The complete checkpoint steps in ``WORKDIR/checkpoints``, ascending ([] if none)."""
    if not tf.io.gfile.isdir(checkpoints.directory(workdir)):
        return []  # the trainer has not written its first checkpoint yet
    manager = checkpoints.manager(workdir, read_only=True)
    try:
        return sorted(manager.all_steps())
    finally:
        manager.close()


def load_done(workdir: str) -> set[int]:
    """Steps a watcher has already evaluated in this workdir."""
    path = os.path.join(eval_dir(workdir), DONE_FILE)
    if not tf.io.gfile.exists(path):
        return set()
    with tf.io.gfile.GFile(path) as f:
        return set(json.load(f)["done"])


def save_done(workdir: str, done: set[int]):
    """Writes the done steps atomically: a watcher killed mid-write keeps the old list."""
    path = os.path.join(eval_dir(workdir), DONE_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))  # local or a bucket (gs://...)
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        json.dump({"done": sorted(done)}, f)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def tag(*names: str) -> str:
    """A TensorBoard tag: ``names`` joined by ``/``. Within a name ``%`` reads ``pct``, a
    ``/`` (as in ``5/class``) ``per`` and whitespace ``_``, so that ``/`` only separates
    levels: ``tag("pretrained", "kNN 5/class") == "pretrained/kNN_5_per_class"``."""
    return "/".join(re.sub(r"\s+", "_", n.replace("%", "pct").replace("/", " per "))
                    for n in names)


def scalars(out: dict) -> dict[str, float]:
    """An evaluation's result flattened to TensorBoard tags (``tag``) → top-1 accuracy.

    ``results`` give ``<representation>/<protocol>``; the per-layer probes
    ``per_layer/<layer>/<protocol>`` and ``per_layer/best_<protocol>``; an official
    protocol ``linear_protocol/<name>``; fine-tuning ``finetune/<label fraction>``.
    """
    flat = {}
    for representation, cells in out.get("results", {}).items():
        for protocol, value in cells.items():
            flat[tag(representation, protocol)] = value
    if "per_layer" in out:
        for row in out["per_layer"]["layers"]:
            for protocol in ("kNN", "linear"):
                flat[tag("per_layer", row["layer"], protocol)] = row[protocol]
        for protocol, best in out["per_layer"]["best"].items():
            flat[tag("per_layer", f"best {protocol}")] = best["top1"]
    if "linear_protocol" in out:
        flat[tag("linear_protocol", out["linear_protocol"]["protocol"])] = (
            out["linear_protocol"]["top1"])
    if "finetune" in out:
        fraction = out["finetune"]["label_fraction"]
        flat[tag("finetune", f"{100 * fraction:g}%")] = out["finetune"]["top1"]
    return {k: float(v) for k, v in flat.items()}


def headline(out: dict) -> str:
    """A short line of an evaluation's main numbers: the pretrained backbone's kNN and
    linear probe with all labels, the best layer and an official protocol's top-1."""
    pretrained = out.get("results", {}).get("pretrained", {})
    parts = [f"{protocol} {100 * pretrained[f'{protocol} 100%']:.1f}%"
             for protocol in ("kNN", "linear") if f"{protocol} 100%" in pretrained]
    if "per_layer" in out:
        best = out["per_layer"]["best"]["linear"]
        parts.append(f"best layer {best['layer']} (linear {100 * best['top1']:.1f}%)")
    if "linear_protocol" in out:
        p = out["linear_protocol"]
        parts.append(f"{p['protocol']} protocol {100 * p['top1']:.1f}%")
    return "; ".join(parts)


def _same_on_every_process(step: int) -> int:
    """Process 0's choice, so that all processes restore (and gather) the same step."""
    if jax.process_count() == 1:
        return step
    return int(multihost_utils.broadcast_one_to_all(np.int64(step)))


def next_step(workdir: str, done: set[int]) -> int:
    """The oldest complete step not done yet, NOTHING_NEW, or NO_CHECKPOINT_YET when no
    complete checkpoint exists (process 0's listing, agreed by all processes)."""
    steps = complete_steps(workdir)
    pending = [s for s in steps if s not in done]
    return _same_on_every_process(pending[0] if pending else
                                  NOTHING_NEW if steps else NO_CHECKPOINT_YET)


def watch(workdir: str, *, evaluate: Callable[[int], dict] | None = None,
          poll_seconds: float = 60.0, max_idle_polls: int | None = None,
          **evaluate_kwargs) -> list[int]:
    """Evaluates new complete checkpoints of ``workdir`` until stopped.

    Args:
      evaluate: ``step -> result dict`` (default: ``job.evaluate(workdir, step=step,
        **evaluate_kwargs)``).
      poll_seconds: the wait between listings that found nothing new.
      max_idle_polls: stop after this many consecutive listings found nothing new
        (None: run until killed, the sidecar's normal life). Listings made before the
        first complete checkpoint exists are waiting, not idle.

    Returns: the steps this call evaluated, in order.
    """
    if evaluate is None:
        from jax_ssl.evaluate import job

        def evaluate(step):
            return job.evaluate(workdir, step=step, **evaluate_kwargs)
    done = load_done(workdir)
    writer = MetricWriter(eval_dir(workdir))
    ckpt_dir = checkpoints.directory(workdir)
    evaluated, damaged, idle, said_waiting = [], set(), 0, False
    _log(f"watching {ckpt_dir}; already evaluated: {sorted(done)}")
    try:
        while True:
            step = next_step(workdir, done | damaged)
            if step == NO_CHECKPOINT_YET:
                if not said_waiting:
                    _log(f"waiting for the first checkpoint in {ckpt_dir}")
                    said_waiting = True
                time.sleep(poll_seconds)
                continue
            if step == NOTHING_NEW:
                idle += 1
                if max_idle_polls is not None and idle >= max_idle_polls:
                    _log(f"stopping after {idle} idle poll{'s' * (idle != 1)} (no new "
                         f"checkpoint in {ckpt_dir}); evaluated steps {evaluated}")
                    break
                time.sleep(poll_seconds)
                continue
            idle = 0
            try:
                out = evaluate(step)
            except checkpoints.DamagedCheckpoint as error:
                # not recorded as done: a restarted watcher tries it again
                _log(f"{error}: skipped")
                damaged.add(step)
                continue
            except Exception as error:
                if step in complete_steps(workdir):
                    raise  # the checkpoint is there: a real failure, not a race
                _log(f"checkpoint {step} was deleted before it could be evaluated "
                     f"({type(error).__name__}: {error}); skipping it.")
                continue  # not recorded as done: a step saved again later is evaluated
            writer.write(step, scalars(out))
            done.add(step)
            if jax.process_index() == 0:
                save_done(workdir, done)
            evaluated.append(step)
            _log(f"evaluated step {step}: {headline(out)}")
    finally:
        writer.close()
    return evaluated
