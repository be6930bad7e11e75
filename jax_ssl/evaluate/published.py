"""Published weights as workdirs: ``jax-ssl-import`` writes one, ``jax-ssl-export``
reads one (the conversion itself is ``jax_ssl.weights``).

An imported workdir holds the config and a step-0 checkpoint with the converted backbone
where the config's method keeps it, so ``jax-ssl-eval`` and ``jax-ssl-analyze`` read it
like a training run's.
"""
from __future__ import annotations

import json
import os
from importlib import resources

import jax
import numpy as np
import safetensors.numpy
import tensorflow as tf

from jax_ssl import checkpoints, methods, weights
from jax_ssl.config import validate
from jax_ssl.evaluate.job import random_backbone_variables, restore_backbone
from jax_ssl.methods import common

# name: (the bundled config it is evaluated and fine-tuned with, its backbone, the
# backbone's keyword arguments), for the released checkpoints (README: published weights)
PUBLISHED = {
    **{f"dino_vit{size}{patch}": ("dino_imagenet", f"vit_{size}{patch}",
                                  {"interpolate_offset": 0.1})
       for size in ("s", "b") for patch in (16, 8)},
    "dino_resnet50": ("dino_imagenet", "resnet50", {}),
    **{f"mae_vit{size}": ("mae_imagenet", f"mae_vit_{size}", {})
       for size in ("b16", "l16", "h14")},
    **{f"mocov3_vit{size}16": ("moco_v3_imagenet", f"vit_{size}16", {}) for size in ("s", "b")},
    "mocov3_resnet50": ("moco_v3_imagenet", "resnet50", {}),
    # supervised: any method that keeps its backbone as params["backbone"] reads it
    "torchvision_resnet50": ("simclr_imagenet", "resnet50", {}),
    **{f"dinov2_vit{size}14{reg}": ("dinov2_imagenet", f"dinov2_vit{size}14{reg}", {})
       for size in ("s", "b", "l", "g") for reg in ("", "_reg")},
}


def published_config(name: str, config=None):
    """The config of released checkpoint ``name`` (``PUBLISHED``): ``config`` (e.g. with
    the data to evaluate on) or else the bundled one, with its architecture."""
    from jax_ssl.config import from_file

    if name not in PUBLISHED:
        raise weights.WeightsError(f"unknown published model {name!r}; choose one of "
                                   f"{', '.join(PUBLISHED)}.")
    bundled, backbone, kwargs = PUBLISHED[name]
    if config is None:  # configs/ installs as jax_ssl.configs
        config = from_file(str(resources.files("jax_ssl.configs") / f"{bundled}.py"))
    with config.unlocked():
        config.model.backbone = backbone
        config.model.backbone_kwargs = kwargs
    return config


def _checkpoint_state(method, variables) -> tuple[dict, dict]:
    """(params, method_state) from which ``method.backbone_variables`` gives
    ``variables`` back: the method keeps its backbone as trainable ``backbone``, as an
    EMA ``teacher`` (its BN statistics beside it or the teacher's own), or as MAE's
    ``encoder``."""
    params, stats = variables["params"], variables.get("batch_stats")
    with_stats = {} if stats is None else {"batch_stats": {"backbone": stats}}
    teacher_stats = {} if stats is None else {"teacher_batch_stats": {"backbone": stats}}
    layouts = [({"backbone": params}, with_stats),
               ({}, {"teacher": {"backbone": params}, **with_stats}),
               ({}, {"teacher": {"backbone": params}, **teacher_stats}),
               ({"encoder": params}, {})]
    for layout in layouts:
        try:
            restored = method.backbone_variables(*layout)
        except KeyError:
            continue
        if jax.tree.structure(restored) == jax.tree.structure(variables):
            return layout
    raise weights.WeightsError(f"{method.__name__} keeps its backbone where import cannot "
                               "put it.")


def import_weights(path: str, config, workdir: str, *, part: str | None = None) -> dict:
    """Reads ``path``, converts it to ``config.model.backbone`` and writes ``workdir``:
    its config.json and checkpoint 0. Nothing is written unless the whole file converts.
    An MAE pre-training checkpoint brings its decoder too (the whole model, as
    ``jax-ssl-train`` keeps it); a backbone alone goes where the config's method keeps
    its backbone. Returns {"step", "tensors", "source"}."""
    validate(config)
    if tf.io.gfile.exists(checkpoints.directory(workdir)):
        raise weights.WeightsError(f"{workdir} already holds a run's checkpoints: give a new "
                                   "--workdir.")
    state = weights.read_state_dict(path)
    method = methods.get(config.method)
    # MAE's pre-training checkpoint: the decoder too, the whole model as it trains
    whole_mae = config.method == "mae" and any(k.endswith("decoder_pred.weight") for k in state)
    if whole_mae:
        module = method.network(config)
        images = np.zeros((1, module.image_size, module.image_size, 3), np.float32)
        template = jax.eval_shape(lambda: module.init(
            {"params": jax.random.PRNGKey(0), "masking": jax.random.PRNGKey(1)}, images))
    else:
        module = common.build_backbone(config, axis_name=None)
        template = jax.eval_shape(lambda: random_backbone_variables(module, config, 0))
    variables = weights.from_state_dict(state, module, template, part=part,
                                        architecture=config.model.backbone)
    params, method_state = ((variables["params"], {}) if whole_mae
                            else _checkpoint_state(method, variables))
    tf.io.gfile.makedirs(workdir)
    with tf.io.gfile.GFile(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json(indent=2))
    manager = checkpoints.manager(workdir)
    checkpoints.save(manager, 0, {"step": np.zeros((), np.int32), "params": params,
                                  "method_state": method_state}, config, force=True)
    manager.wait_until_finished()
    return {"step": 0, "tensors": len(jax.tree.leaves(variables)),
            "source": os.path.abspath(path)}


def export_weights(workdir: str, path: str, *, step: int | None = None) -> dict:
    """``workdir``'s evaluated backbone → a ``.safetensors`` state dict
    (``weights.to_state_dict``), written whole or not at all. Returns {"step", "tensors",
    "backbone"}."""
    config, step, backbone, variables = restore_backbone(workdir, step)
    state = weights.to_state_dict(backbone, jax.tree.map(
        lambda x: np.asarray(x, np.float32), variables))
    metadata = {"jax_ssl": json.dumps({"workdir": workdir, "step": int(step),
                                       "backbone": config.model.backbone})}
    temporary = f"{path}.tmp"
    with tf.io.gfile.GFile(temporary, "wb") as f:
        f.write(safetensors.numpy.save(state, metadata=metadata))
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return {"step": int(step), "tensors": len(state), "backbone": config.model.backbone}
