"""The evaluation job on a training workdir's Orbax checkpoint (CLI: ``__main__.py``).

Rebuilds the backbone from the config saved with the checkpoint, restores only its
variables (the teacher for methods that evaluate it), extracts frozen features of the
train and eval splits and reports DINO's kNN (k=20, τ=0.07) and a linear probe with
all, 1% and 5-per-class of the training labels; by default also for a randomly
initialised backbone and for raw pixels. Results go to ``WORKDIR/eval/step_N.json``.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np

from jax_ssl import checkpoints, methods, parallel
from jax_ssl.data import recipes, sources
from jax_ssl.evaluate import features, knn, labels, linear
from jax_ssl.methods import common

LABEL_REGIMES = {"100%": {}, "1%": {"fraction": 0.01}, "5/class": {"per_class": 5}}


def restore_backbone(workdir: str, step: int | None = None):
    """(config, step, backbone module, its variables) of a training workdir's checkpoint."""
    ckpt_dir = checkpoints.directory(workdir)
    if not os.path.isdir(ckpt_dir):
        raise FileNotFoundError(f"no checkpoints in {ckpt_dir}: is {workdir!r} the --workdir "
                                "of a training run?")
    manager = checkpoints.manager(workdir, read_only=True)
    step = manager.latest_step() if step is None else step
    if step is None or step not in manager.all_steps():
        raise FileNotFoundError(f"no complete checkpoint{'' if step is None else f' {step}'} in "
                                f"{ckpt_dir} (complete steps: {list(manager.all_steps())}).")
    config = checkpoints.restore_config(manager, step)
    saved = checkpoints.restore_state(manager, step=step)
    method = methods.get(config.method)
    backbone = common.build_backbone(config, axis_name=None)
    variables = method.backbone_variables(saved["params"], saved["method_state"])
    expected = jax.eval_shape(lambda: random_backbone_variables(backbone, config, 0))
    _check_same_layout(expected, variables, config)
    return config, step, backbone, variables


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
    return backbone.init(jax.random.PRNGKey(seed), np.zeros((1, size, size, 3), np.float32),
                         train=False)


def _embedders(backbone, variables, random_variables):
    def embed(v):
        return lambda images: common.pooled(backbone.apply(v, images, train=False))
    return {"pretrained": embed(variables), "random init": embed(random_variables),
            "raw pixels": lambda images: images.reshape(images.shape[0], -1)}


def evaluate(workdir: str, *, step: int | None = None, baselines: bool = True,
             batch_size: int = 512) -> dict:
    """Evaluates one checkpoint; returns {representation: {protocol: top-1 accuracy}}."""
    config, step, backbone, variables = restore_backbone(workdir, step)
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
                           random_backbone_variables(backbone, config, config.seed + 1))
    if not baselines:
        embedders = {"pretrained": embedders["pretrained"]}
    results = {}
    for name, embed in embedders.items():
        train_x, train_y = features.extract(embed, train_source, recipe, mesh,
                                            batch_size=batch_size)
        test_x, test_y = features.extract(embed, test_source, recipe, mesh,
                                          batch_size=batch_size)
        results[name] = {}
        for regime, subset in LABEL_REGIMES.items():
            keep = (labels.label_subset(train_y, seed=0, **subset) if subset
                    else np.arange(len(train_y)))
            args = (train_x[keep], train_y[keep], test_x, test_y)
            num_classes = train_source.num_classes
            results[name][f"kNN {regime}"] = knn.knn_accuracy(
                *args, num_classes=num_classes)["top1"]
            results[name][f"linear {regime}"] = linear.linear_probe(
                *args, num_classes=num_classes)["top1"]
    if jax.process_index() == 0:
        os.makedirs(os.path.join(workdir, "eval"), exist_ok=True)
        with open(os.path.join(workdir, "eval", f"step_{step}.json"), "w") as f:
            json.dump({"step": step, "results": results}, f, indent=2)
    return {"step": step, "results": results}


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
