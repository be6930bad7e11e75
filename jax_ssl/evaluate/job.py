"""The evaluation job on a training workdir's Orbax checkpoint (CLI: ``__main__.py``).

Rebuilds the backbone from the config saved with the checkpoint (optionally computing
in another dtype), restores only its variables (the teacher for methods that evaluate
it), extracts frozen features of the train and eval splits and reports DINO's kNN
(k=20, τ=0.07) and a linear probe with all, 1% and 5-per-class of the training labels;
by default also for a randomly initialised backbone and for raw pixels. Optionally also
kNN and linear probes of every layer (``layers.py``) and one of the official
linear-probe protocols (``protocols.py``). Results go to ``WORKDIR/eval/step_N.json``,
the per-layer table and plot to ``WORKDIR/eval/per_layer_step_N.{txt,png}``.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import numpy as np
import tensorflow as tf

from jax_ssl import checkpoints, methods, parallel
from jax_ssl.data import recipes, sources
from jax_ssl.evaluate import features, finetune, knn, labels, layers, linear, protocols
from jax_ssl.methods import common

LABEL_REGIMES = {"100%": {}, "10%": {"fraction": 0.1}, "1%": {"fraction": 0.01},
                 "5/class": {"per_class": 5}}
# The official protocols' training augmentation: RandomResizedCrop (torchvision's default
# scale) and a horizontal flip, which the project's ``mae`` recipe is.
PROBE_CROP_SCALE = (0.08, 1.0)


class NoCheckpoint(FileNotFoundError):
    """The workdir holds no (complete) checkpoint, or not the step asked for."""


class ResultsNotWritten(OSError):
    """The results were computed (and printed by the command line) but not written."""


def _log(message: str):
    if jax.process_index() == 0:
        print(message, flush=True)


def restore_backbone(workdir: str, step: int | None = None, *, dtype: str | None = None):
    """(config, step, backbone module, its variables) of a training workdir's checkpoint.

    ``dtype`` ("float32" or "bfloat16") overrides the compute dtype the run trained in;
    the variables stay as saved (float32).
    """
    config, step, saved = restore_run(workdir, step, dtype=dtype)
    method = methods.get(config.method)
    backbone = common.build_backbone(config, axis_name=None)
    variables = method.backbone_variables(saved["params"], saved["method_state"])
    expected = jax.eval_shape(lambda: random_backbone_variables(backbone, config, 0))
    _check_same_layout(expected, variables, config)
    return config, step, backbone, variables


def restore_run(workdir: str, step: int | None = None, *, dtype: str | None = None):
    """(config, step, the saved state as nested dicts: ``params``, ``method_state``, …)
    of a training workdir's checkpoint (``restore_backbone``'s)."""
    ckpt_dir = checkpoints.directory(workdir)
    if not tf.io.gfile.isdir(ckpt_dir):
        raise NoCheckpoint(f"no checkpoints in {ckpt_dir}: is {workdir!r} the --workdir "
                           "of a training run?")
    manager = checkpoints.manager(workdir, read_only=True)
    complete = list(manager.all_steps())
    if not complete or (step is not None and step not in complete):
        raise NoCheckpoint(f"no complete checkpoint{'' if step is None else f' {step}'} in "
                           f"{ckpt_dir} (complete steps: {complete}).")

    def read(step):
        return (checkpoints.restore_config(manager, step),
                checkpoints.restore_state(manager, step))
    if step is None:  # the newest readable one; a damaged one is left as it is
        step, saved = checkpoints.newest_intact(
            manager, read, on_damaged=lambda step, error: _log(f"{error}: skipped"))
        if step is None:
            raise checkpoints.DamagedCheckpoint(
                f"no checkpoint in {ckpt_dir} can be read (steps {complete}, each "
                "damaged: see above).")
    else:
        saved = read(step)
    config, saved = saved
    if dtype is not None:
        config.dtype = dtype
        common.compute_dtype(config)  # a clear error for an unknown name
    return config, step, saved


def _check_same_layout(expected, restored, config):
    def shapes(tree):
        return {jax.tree_util.keystr(path): tuple(x.shape)
                for path, x in jax.tree_util.tree_leaves_with_path(tree)}
    want, got = shapes(expected), shapes(restored)
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:5]
        raise ValueError(f"the checkpoint's backbone does not match {config.model.backbone} "
                         f"as its config builds it; first differences (path, shape): {diff}.")


def random_backbone_variables(backbone, config, seed: int):
    size = config.data.crop_size
    # jitted: op by op, each of the initialisation's small operations compiles alone
    return jax.jit(functools.partial(backbone.init, train=False))(
        jax.random.PRNGKey(seed), np.zeros((1, size, size, 3), np.float32))


def _embedders(backbone, variables, random_variables, *, greyscale: bool = False):
    """{representation: ``images -> [B, D]``}; a greyscale source's raw pixels count each
    pixel once, not once per copied channel (the same cosine kNN, a third of its cost)."""
    def embed(v):
        return lambda images: common.pooled(backbone.apply(v, images, train=False))

    def pixels(images):
        return (images[..., :1] if greyscale else images).reshape(images.shape[0], -1)
    return {"pretrained": embed(variables), "random init": embed(random_variables),
            "raw pixels": pixels}


def probe_batch_size(batch_size: int, source, mesh) -> int:
    """``batch_size``, capped at the largest multiple of the device count that the
    training split fills (training batches are whole and split evenly over devices)."""
    devices = mesh.devices.size
    fitting = source.num_examples // devices * devices
    if fitting == 0:
        raise ValueError(f"{source.name} {source.split} has {source.num_examples} examples, "
                         f"fewer than the {devices} devices.")
    return min(batch_size, fitting)


def evaluate(workdir: str, *, step: int | None = None, baselines: bool = True,
             batch_size: int = 512, per_layer: bool = False, vit_token: str = "cls",
             protocol: str = "fast", protocol_kwargs: dict | None = None,
             label_fraction: float = 1.0, dtype: str | None = None,
             write: bool = True) -> dict:
    """Evaluates one checkpoint.

    Args:
      step: the checkpoint (default: the latest complete one).
      baselines: also a random-init backbone and raw pixels.
      batch_size: global batch of the feature extraction (and of a protocol's training,
        capped to what the training split fills).
      per_layer: also kNN and the fast linear probe on every ResNet stage / ViT block
        (``vit_token``: "cls" or "mean", see ``layers.py``).
      protocol: "fast" (only the L-BFGS probe), an official linear protocol "dino",
        "mae", "simclr", or MAE's end-to-end "finetune" (``finetune.py``), run in
        addition on the pretrained backbone; ``protocol_kwargs`` go to it (e.g.
        ``{"epochs": 2}``).
      label_fraction: the protocol trains on this fraction of each class of the
        training split (1%, 10%: the low-label transfer); needs an indexed source.
      dtype: compute dtype of the backbone ("bfloat16" or "float32"; default: the run's).
        Features are float32 either way.
      write: write the results (``write_outputs``, process 0); the command line prints
        them first and writes them after.

    Returns:
      {"step", "method", "dataset", "dtype", "results": {representation: {protocol:
      top-1}}} and, when asked for, "per_layer" (``layers.per_layer_probe``'s dict) and
      "linear_protocol" (``protocols.train_and_test``'s dict with the protocol's
      settings) or "finetune" (``finetune.finetune``'s).
    """
    if protocol not in protocols.NAMES:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {protocols.NAMES}.")
    if not 0 < label_fraction <= 1 or (label_fraction < 1 and protocol == "fast"):
        raise ValueError(f"label_fraction={label_fraction}: a fraction in (0, 1] of the "
                         "labels that a --protocol other than fast trains on.")
    config, step, backbone, variables = restore_backbone(workdir, step, dtype=dtype)
    mesh = parallel.data_mesh()
    data = config.data
    recipe = recipes.make_recipe("eval", size=data.crop_size,
                                 resize_size=data.eval_resize_size,
                                 normalization=data.recipe_kwargs.normalization)

    def split(name):
        return sources.get_source(data.source, name, data_dir=data.get("data_dir"),
                                  image_size=data.get("image_size"))
    train_source, test_source = split(data.split), split(data.eval_split)
    embedders = _embedders(backbone, variables,
                           random_backbone_variables(backbone, config, config.seed + 1),
                           greyscale=getattr(train_source, "greyscale", False))
    if not baselines:
        embedders = {"pretrained": embedders["pretrained"]}
    embed_layers = (layers.layer_embedder(backbone, variables, vit_token=vit_token)
                    if per_layer else lambda images: ())

    # One pass over each split for every representation and layer: the input pipeline,
    # not the networks, is most of the cost of a pass on small images. (XLA merges the
    # pretrained backbone's forward pass with the per-layer one: it runs once.)
    def embed_all(images):
        return ({name: embed(images) for name, embed in embedders.items()},
                embed_layers(images))
    (train_x, train_layers), train_y = features.extract(embed_all, train_source, recipe, mesh,
                                                        batch_size=batch_size)
    (test_x, test_layers), test_y = features.extract(embed_all, test_source, recipe, mesh,
                                                     batch_size=batch_size)
    num_classes = train_source.num_classes
    results = {}
    for name in embedders:
        results[name] = {}
        for regime, subset in LABEL_REGIMES.items():
            keep = (labels.label_subset(train_y, seed=0, **subset) if subset
                    else np.arange(len(train_y)))
            args = (train_x[name][keep], train_y[keep], test_x[name], test_y)
            results[name][f"kNN {regime}"] = knn.knn_accuracy(
                *args, num_classes=num_classes)["top1"]
            results[name][f"linear {regime}"] = linear.linear_probe(
                *args, num_classes=num_classes)["top1"]
    out = {"step": step, "method": config.method, "dataset": train_source.name,
           "dtype": config.dtype, "results": results}
    if per_layer:
        _log(f"per-layer probes of {len(layers.layer_names(backbone))} layers")
        out["per_layer"] = layers.probe_layers(
            backbone, train_layers, train_y, test_layers, test_y,
            num_classes=num_classes, vit_token=vit_token, log=_log)
    if protocol != "fast":
        protocol_source = train_source if label_fraction == 1 else sources.subset(
            train_source, labels.label_subset(train_source.labels, fraction=label_fraction))
        train_recipe = (
            recipes.make_recipe("finetune", size=data.crop_size,
                                normalization=data.recipe_kwargs.normalization)
            if protocol == "finetune" else
            recipes.make_recipe("mae", size=data.crop_size, scale=PROBE_CROP_SCALE,
                                normalization=data.recipe_kwargs.normalization))
        probe_data = protocols.ProbeData(protocol_source, test_source, train_recipe, recipe,
                                         mesh)
        kwargs = {"batch_size": probe_batch_size(batch_size, protocol_source, mesh),
                  "seed": config.seed, **(protocol_kwargs or {})}
        _log(f"{protocol} protocol on {protocol_source.num_examples} labelled examples: "
             f"{kwargs}")
        run_protocol = (finetune.finetune if protocol == "finetune"
                        else functools.partial(protocols.run, protocol))
        out["finetune" if protocol == "finetune" else "linear_protocol"] = {
            **run_protocol(backbone, variables, probe_data, log=_log, **kwargs),
            "label_fraction": label_fraction}
    if write and jax.process_index() == 0:
        write_outputs(workdir, out)
    return out


def write_outputs(workdir: str, out: dict):
    """``WORKDIR/eval/step_N.json``; with per-layer results also their table and plot.
    A failed write is one ``OSError`` naming the directory."""
    directory = os.path.join(workdir, "eval")
    try:
        _write_outputs(directory, out)
    except (OSError, tf.errors.OpError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ResultsNotWritten(f"the results of step {out['step']} could not be written "
                                f"to {directory} ({reason}); give a workdir you can write "
                                "to, or copy the run to one.") from e


def _write_outputs(directory: str, out: dict):
    tf.io.gfile.makedirs(directory)  # local or a bucket (gs://...)
    step = out["step"]
    with tf.io.gfile.GFile(os.path.join(directory, f"step_{step}.json"), "w") as f:
        json.dump(out, f, indent=2)
    if "per_layer" in out:
        stem = os.path.join(directory, f"per_layer_step_{step}")
        with tf.io.gfile.GFile(stem + ".txt", "w") as f:
            f.write(layers.format_layer_table(out["per_layer"]) + "\n")
        layers.plot_layers(out["per_layer"], stem + ".png", **per_layer_plot_labels(out))


def per_layer_plot_labels(out: dict) -> dict:
    """The per-layer plot's title and its reference lines: the baselines' probes with all
    labels, the regime of the per-layer probes (none without ``baselines``)."""
    title = f"{out['method']} on {out['dataset']}, step {out['step']}: per layer, all labels"
    references = {name: {p: out["results"][name][f"{p} 100%"] for p in layers.PROTOCOLS}
                  for name in ("random init", "raw pixels") if name in out["results"]}
    return {"title": title, "references": references}


def format_table(results: dict) -> str:
    """Rows: representations; columns: protocols; cells: top-1 accuracy in %."""
    rows = list(results)
    columns = list(results[rows[0]])
    width = max(len(r) for r in rows)
    lines = [" " * width + " | " + " | ".join(f"{c:>12}" for c in columns)]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(f"{r:<{width}} | " + " | ".join(f"{100 * results[r][c]:>11.1f}%"
                                                     for c in columns))
    return "\n".join(lines)
