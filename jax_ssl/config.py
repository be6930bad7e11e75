"""The fields every training config has, with their defaults; configs/*.py start here.

``base(method, dataset)`` returns a ConfigDict with the trainer's fields and the data
preset of ``dataset``; a config file then sets its method's section and overrides::

    def get_config():
        config = base("simclr", "fashion_mnist")
        config.simclr = dict(temperature=0.2, ...)
        return config

``from_file(path)`` runs a config file's ``get_config()`` (the demo, the benchmarks and
configs built on another config load them so). ``KEY_HELP`` says what each trainer key
means; ``describe(config)`` lists a config's keys with it (``jax-ssl-train
--print_config``). ``validate(config)`` checks a config whole before anything is built
(every number in range, every name known, every combination consistent) and raises
``ConfigError`` with one line naming the key, its value and what is allowed; its rules
are the tables ``trainer_rules()``, ``METHOD_RULES`` and ``COMBINATIONS``.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import inspect
import math
import numbers
import os
import typing
from collections.abc import Callable
from typing import Any

import ml_collections

from jax_ssl import methods  # the names only: its package imports no method

# Per dataset: the source, its evaluation split, the side of the crops the recipes make,
# the side the eval transform resizes to before its centre crop, and the normalisation.
DATASETS = {
    "digits": dict(source="digits", eval_split="test", image_size=32, crop_size=32,
                   eval_resize_size=32, mean=(0.5,) * 3, std=(0.5,) * 3),
    "fashion_mnist": dict(source="fashion_mnist", eval_split="test", image_size=None,
                          crop_size=28, eval_resize_size=28, mean=(0.286,) * 3,
                          std=(0.353,) * 3),
    "cifar10": dict(source="tfds:cifar10", eval_split="test", image_size=None, crop_size=32,
                    eval_resize_size=32, mean=(0.4914, 0.4822, 0.4465),
                    std=(0.247, 0.2435, 0.2616)),
    "imagenet": dict(source="tfds:imagenet2012", eval_split="validation", image_size=None,
                     crop_size=224, eval_resize_size=256, mean=(0.485, 0.456, 0.406),
                     std=(0.229, 0.224, 0.225)),
}


def base(method: str, dataset: str) -> ml_collections.ConfigDict:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset preset {dataset!r}; choose one of {sorted(DATASETS)}.")
    preset = DATASETS[dataset]
    config = ml_collections.ConfigDict()
    config.method = method
    config.seed = 0
    config.batch_size = 256
    config.epochs = 100.0  # float: short runs train fractions of an epoch
    config.total_steps = 0  # 0: epochs × steps per epoch
    config.dtype = "float32"  # compute dtype of the networks: float32 or bfloat16
    config.grad_accum_steps = 1
    config.log_every = 50

    config.data = ml_collections.ConfigDict()
    config.data.source = preset["source"]
    config.data.split = "train"
    config.data.eval_split = preset["eval_split"]
    config.data.eval_resize_size = preset["eval_resize_size"]
    config.data.data_dir = ml_collections.config_dict.placeholder(str)
    config.data.image_size = preset["image_size"] or ml_collections.config_dict.placeholder(int)
    config.data.recipe = "simclr"
    normalization = (tuple(preset["mean"]), tuple(preset["std"]))
    config.data.recipe_kwargs = ml_collections.ConfigDict(
        {"size": preset["crop_size"], "normalization": normalization})
    config.data.crop_size = preset["crop_size"]
    config.data.augment_on_device = True

    config.model = ml_collections.ConfigDict()
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = ml_collections.ConfigDict()

    config.optimizer = ml_collections.ConfigDict(dict(
        name="lars", base_learning_rate=0.3, final_learning_rate=0.0, warmup_epochs=10,
        weight_decay=1e-6, momentum=0.9))

    config.checkpoint = ml_collections.ConfigDict(dict(every_steps=1000, keep=3,
                                                       keep_every=0))
    config.distributed = ml_collections.ConfigDict(dict(
        enabled=False, coordinator_address="", num_processes=0, process_id=-1,
        cpu_collectives=""))
    return config


# What each trainer key means (``describe``; tests/test_configs.py checks that every key of
# every config file is here or in a section documented by ``SECTION_HELP``).
KEY_HELP = {
    "method": "the method module, jax_ssl/methods/<method>.py",
    "seed": "parameter init, data order and augmentation seed",
    "batch_size": "global batch: all devices of all processes (lr scales by batch/256)",
    "epochs": "length in epochs of the training split (float: fractions allowed)",
    "total_steps": "length in steps; 0: epochs x steps per epoch",
    "dtype": "compute dtype of the networks: float32 or bfloat16 (params stay float32)",
    "grad_accum_steps": "micro-batches per step whose gradients are averaged",
    "log_every": "steps between progress lines and metrics.jsonl records",
    "data.source": "digits | fashion_mnist | folder:<path with {split}> | npz:<path with "
                   "{split}> | tfds:<name>",
    "data.split": "training split",
    "data.eval_split": "split the evaluation job tests on",
    "data.eval_resize_size": "evaluation: short side resized to this, then centre crop",
    "data.data_dir": "where the source's files are (default: its cache)",
    "data.image_size": "resize the source's images to this side first (None: as stored)",
    "data.recipe": "augmentation recipe: simclr | byol | multicrop | mae | jigsaw | "
                   "relative_position | pirl (data/recipes.py)",
    "data.recipe_kwargs": "keyword arguments of the recipe (its signature in data/recipes.py)",
    "data.crop_size": "side of the crops the model sees (evaluation crops to it too)",
    "data.augment_on_device": "in-memory sources (digits, fashion_mnist): augment inside the "
                              "jitted step instead of in tf.data",
    "model.backbone": "resnet18 ... resnet101 | vit_ti16 ... vit_h14 | mae_vit_* (models/)",
    "model.backbone_kwargs": "fields of the backbone module (e.g. patch_size, depth)",
    "optimizer.name": "lars | adamw | sgd",
    "optimizer.base_learning_rate": "learning rate per 256 images (x batch_size/256; "
                                    "lr_scaling=sqrt: x sqrt(batch_size/1024))",
    "optimizer.lr_scaling": "linear (per 256 images) | sqrt (DINOv2: sqrt of batch/1024)",
    "optimizer.final_learning_rate": "learning rate the cosine decays to (absolute)",
    "optimizer.warmup_epochs": "linear warm-up from initial_learning_rate, in epochs",
    "optimizer.initial_learning_rate": "learning rate the warm-up starts from (absolute; "
                                       "default 0; I-JEPA: 2e-4)",
    "optimizer.weight_decay": "decoupled (adamw) or L2 (lars, sgd); not biases or norms",
    "optimizer.final_weight_decay": "weight decay cosine-scheduled to this (DINO: 0.4)",
    "optimizer.momentum": "lars / sgd momentum",
    "optimizer.nesterov": "sgd: Nesterov momentum",
    "optimizer.trust_coefficient": "lars trust coefficient (eta)",
    "optimizer.b1": "adamw beta 1",
    "optimizer.b2": "adamw beta 2",
    "optimizer.clip_per_tensor": "clip each tensor's gradient to this norm (DINO: 3.0)",
    "optimizer.clip_per_part": "clip the gradient of the backbone and of each head to this "
                               "global norm (DINOv2: 3.0)",
    "optimizer.layer_decay": "ViT layer-wise lr decay: block i's lr x decay^(depth-i) "
                             "(DINOv2: 0.9; none: off)",
    "optimizer.patch_embed_lr_mult": "with layer_decay, the patch embedding's extra lr "
                                     "factor (DINOv2: 0.2)",
    "checkpoint.every_steps": "save every this many steps (and at the end, on SIGTERM)",
    "checkpoint.keep": "keep the last this many checkpoints (>= 1)",
    "checkpoint.keep_every": "also keep every this-many-th step for good (0: none)",
    "distributed.enabled": "join a multi-process run (jax.distributed.initialize)",
    "distributed.coordinator_address": "host:port of process 0 (empty: auto-detect)",
    "distributed.num_processes": "processes in the run (0: auto-detect)",
    "distributed.process_id": "this process's index (-1: auto-detect)",
    "distributed.cpu_collectives": "CPU collectives implementation, e.g. gloo (tests)",
}
# Sections whose keys belong to another module's signature, not to the trainer.
SECTION_HELP = {
    "data.recipe_kwargs": "the recipe's keyword arguments (jax_ssl/data/recipes.py)",
    "model.backbone_kwargs": "the backbone's fields (jax_ssl/models/)",
    **{method: f"the method's settings (docstring of jax_ssl/methods/{method}.py)"
       for method in methods.NAMES},
}


def flat_items(config, prefix: str = ""):
    """``(dotted key, value)`` of every leaf of ``config``, depth first."""
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict) and value:
            yield from flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _section(key: str) -> str | None:
    return next((section for section in SECTION_HELP if key.startswith(section + ".")), None)


def undocumented_keys(config: ml_collections.ConfigDict) -> list[str]:
    """The keys of ``config`` that neither ``KEY_HELP`` nor ``SECTION_HELP`` explains."""
    return [key for key, _ in flat_items(config) if key not in KEY_HELP and not _section(key)]


def describe(config: ml_collections.ConfigDict) -> str:
    """Every key of ``config`` with its value and what it means, one per line (a section
    of another module's arguments gets one comment line above its keys)."""
    lines, section = [], None
    for key, value in flat_items(config):
        setting = f"{key} = {value!r}"
        if _section(key):
            if _section(key) != section:
                section = _section(key)
                lines.append(f"# {section}: {SECTION_HELP[section]}")
            lines.append(setting)
        else:
            section = None
            lines.append(f"{setting:<40}  # {KEY_HELP.get(key, '(undocumented)')}")
    return "\n".join(lines)


def cpu_vit(config: ml_collections.ConfigDict, *, patch_size: int) -> None:
    """The CPU configs' backbone: a ViT of 3 blocks, width 128, 4 heads, on patches of
    ``patch_size`` (16 tokens at 28 or 32 px; about 500 training images/s on 2 cores)."""
    config.model.backbone = "vit_ti16"
    config.model.backbone_kwargs = dict(patch_size=patch_size, image_size=config.data.crop_size,
                                        embed_dim=128, depth=3, num_heads=4)


def cpu_adamw(config: ml_collections.ConfigDict, *, learning_rate: float = 1e-3,
              warmup_epochs: float = 0.1, weight_decay: float = 1e-4) -> None:
    """AdamW for the short CPU runs (lr per 256 images, cosine to 0)."""
    config.optimizer = dict(name="adamw", base_learning_rate=learning_rate,
                            final_learning_rate=0.0, warmup_epochs=warmup_epochs,
                            weight_decay=weight_decay, b1=0.9, b2=0.999)


def small_images_byol_recipe(config: ml_collections.ConfigDict) -> None:
    """BYOL's asymmetric views (solarise 0 / 0.2) without blur, for 28–32 px images."""
    config.data.recipe = "byol"
    config.data.recipe_kwargs.update(dict(scale=(0.2, 1.0), blur=(0.0, 0.0),
                                          interpolation="bilinear"))


def small_images_multicrop(config: ml_collections.ConfigDict, *, style: str = "dino",
                           num_local: int = 4) -> None:
    """Multi-crop for 28–32 px images: global crops at full size, local ones at half, no
    blur, ``num_local`` local crops (fewer than the official 6–10, for CPU budgets)."""
    size = config.data.crop_size
    config.data.recipe = "multicrop"
    config.data.recipe_kwargs = dict(style=style, global_size=size, local_size=size // 2,
                                     num_local=num_local, blur=False,
                                     normalization=config.data.recipe_kwargs.normalization)


# The CPU configs (configs/<method>_{digits,fashion_mnist}.py): 10 epochs of digits or 1 of
# Fashion-MNIST, the CPU ViT (the pretext methods: a small ResNet), AdamW, and each
# method's official objective with heads shrunk to 512-wide layers.
CPU_EPOCHS = {"digits": 10.0, "fashion_mnist": 1.0}
CPU_PATCH = {"digits": 8, "fashion_mnist": 7}  # 16 tokens at 32 and 28 px
CPU_SECTIONS = {
    "byol": dict(base_momentum=0.99, hidden_dim=512, output_dim=128),
    "moco_v3": dict(temperature=0.2, base_momentum=0.99, projector_layers=3, hidden_dim=512,
                    output_dim=128),
    "barlow_twins": dict(projector_sizes=(512, 512, 512), lambd=0.0051),
    "vicreg": dict(projector_sizes=(512, 512, 512), sim_coeff=25.0, std_coeff=25.0,
                   cov_coeff=1.0),
    "dino": dict(out_dim=1024, hidden_dim=512, bottleneck_dim=128, use_bn_in_head=False,
                 norm_last_layer=True, base_momentum=0.996, student_temp=0.1,
                 warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                 center_momentum=0.9, freeze_last_layer=0.0),
    "ibot": dict(out_dim=1024, patch_out_dim=1024, hidden_dim=512, bottleneck_dim=128,
                 norm_last_layer=True, shared_head=True, shared_head_teacher=True,
                 base_momentum=0.996, student_temp=0.1, warmup_teacher_temp=0.04,
                 teacher_temp=0.04, warmup_teacher_patch_temp=0.04, teacher_patch_temp=0.04,
                 warmup_teacher_temp_epochs=0, center_momentum=0.9, center_momentum2=0.9,
                 lambda1=1.0, lambda2=1.0, mask_probability=0.5, pred_ratio=0.3,
                 pred_ratio_var=0.2, freeze_last_layer=0.0),
    "dinov2": dict(out_dim=1024, hidden_dim=512, bottleneck_dim=128, separate_head=False,
                   patch_out_dim=1024, patch_hidden_dim=512, patch_bottleneck_dim=128,
                   base_momentum=0.992, student_temp=0.1, warmup_teacher_temp=0.04,
                   teacher_temp=0.04, warmup_teacher_temp_epochs=0, centering="centering",
                   center_momentum=0.9, dino_weight=1.0, ibot_weight=1.0, koleo_weight=0.1,
                   mask_probability=0.5, mask_ratio_min=0.1, mask_ratio_max=0.5,
                   freeze_last_layer=0.0),
    "swav": dict(hidden_dim=512, output_dim=128, num_prototypes=100, temperature=0.1,
                 epsilon=0.05, sinkhorn_iterations=3, crops_for_assign=(0, 1),
                 freeze_prototypes_steps=50, queue_length=0, queue_start_epoch=0.0),
    "mae": dict(mask_ratio=0.75, norm_pix_loss=True),
    "ijepa": dict(num_targets=4, target_scale=(0.15, 0.2), target_aspect_ratio=(0.75, 1.5),
                  context_scale=(0.85, 1.0), min_keep=4, predictor_dim=64, predictor_depth=2,
                  base_momentum=0.996),
    "qbheat": dict(decoder_dim=64, decoder_depth=2, decoder_heads=4, norm_pix_loss=True),
    "rotation": dict(hidden_dims=()),
    "jigsaw": dict(num_permutations=100, crop_dim=128, hidden_dims=(512,)),
    "relative_position": dict(crop_dim=128, hidden_dims=(512,)),
    "pirl": dict(output_dim=128, crop_dim=128, temperature=0.07, lambd=0.5,
                 num_negatives=4096, momentum=0.5),
}
# The pretext methods and PIRL train the backbone of the seeds' per-layer experiment
# (experiments/layerwise_pretext_vs_pirl.py), a ResNet-18 of width 16 with the CIFAR stem,
# whose four stages the per-layer probes read.
PRETEXT_METHODS = ("rotation", "jigsaw", "relative_position", "pirl")
# DINO's optimiser (AdamW, wd 0.04 -> 0.4, clipping 3.0) is iBOT's and DINOv2's too;
# DINOv2 clips the backbone's and each head's gradient as a whole, the others each tensor.
DISTILLATION_METHODS = ("dino", "ibot", "dinov2")
MULTICROP_METHODS = (*DISTILLATION_METHODS, "swav")
CPU_RESNET = dict(cifar_stem=True, width=16)


# I-JEPA's blocks need a finer grid than 16 tokens (a target block of 15-20% must hold
# more than min_keep = 4 patches): 64 tokens on digits, 49 on Fashion-MNIST.
IJEPA_CPU_PATCH = {"digits": 4, "fashion_mnist": 4}


def ijepa_crops(config: ml_collections.ConfigDict) -> None:
    """I-JEPA's only augmentation: RandomResizedCrop of scale (0.3, 1), no flip
    (``in1k_vith14_ep300.yaml``: use_horizontal_flip false)."""
    config.data.recipe = "mae"
    config.data.recipe_kwargs.update(scale=(0.3, 1.0), flip=False)


def ijepa_vit(config: ml_collections.ConfigDict, *, patch_size: int) -> None:
    """The CPU ViT as I-JEPA's encoder: no CLS token, fixed sin-cos position embedding."""
    cpu_vit(config, patch_size=patch_size)
    config.model.backbone_kwargs.update(class_token=False, pos_embed="sincos")


def small_images_pretext_recipe(config: ml_collections.ConfigDict) -> None:
    """The pretext recipes for 28–32 px images: a 3×3 grid of 9–10 px cells with tiles
    (jigsaw, PIRL) and patches (relative position) 2 px smaller than their cells, as
    Noroozi's 64 px tiles in 85 px cells leave a gap; RotNet's crops at scale (0.5, 1)."""
    size = config.data.crop_size
    cell = size // 3
    method = config.method
    if method == "rotation":
        config.data.recipe = "mae"
        config.data.recipe_kwargs.update(scale=(0.5, 1.0))
        return
    config.data.recipe = method
    config.data.recipe_kwargs = dict(normalization=config.data.recipe_kwargs.normalization, **{
        "jigsaw": dict(size=3 * cell, tile=cell - 2,
                       num_permutations=CPU_SECTIONS["jigsaw"]["num_permutations"]),
        "relative_position": dict(patch=cell - 2, gap=2, jitter=1),
        "pirl": dict(size=size, scale=(0.2, 1.0), jigsaw_size=3 * cell, tile=cell - 2),
    }[method])


def cpu_config(method: str, dataset: str) -> ml_collections.ConfigDict:
    """``method`` sized for a 2-core CPU on ``digits`` or ``fashion_mnist``."""
    config = base(method, dataset)
    config.epochs = CPU_EPOCHS[dataset]
    patch = CPU_PATCH[dataset]
    if method in PRETEXT_METHODS:
        small_images_pretext_recipe(config)
    elif method in MULTICROP_METHODS:
        small_images_multicrop(config, style="swav" if method == "swav" else "dino")
    elif method in ("mae", "qbheat"):
        config.data.recipe = "mae"
        config.data.recipe_kwargs.scale = (0.2, 1.0)
    elif method == "ijepa":
        ijepa_crops(config)
    else:
        small_images_byol_recipe(config)
    if method == "mae":  # the CPU ViT as encoder, a 2-block 64-d decoder
        config.model.backbone = "mae_vit_tiny"
        config.model.backbone_kwargs = dict(
            patch_size=patch, image_size=config.data.crop_size, embed_dim=128, depth=3,
            num_heads=4, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4)
        cpu_adamw(config, learning_rate=6e-4, weight_decay=0.05)
        config.optimizer.b2 = 0.95
    elif method == "ijepa":
        ijepa_vit(config, patch_size=IJEPA_CPU_PATCH[dataset])
        cpu_adamw(config, learning_rate=5e-4, weight_decay=0.04)
        config.optimizer.final_weight_decay = 0.4
    elif method == "qbheat":  # MAE's optimiser; the encoder sees a 2×2 quarter of 16 tokens
        cpu_vit(config, patch_size=patch)
        cpu_adamw(config, learning_rate=6e-4, weight_decay=0.05)
        config.optimizer.b2 = 0.95
    elif method in PRETEXT_METHODS:
        config.model.backbone = "resnet18"
        config.model.backbone_kwargs = dict(CPU_RESNET)
        cpu_adamw(config)
    else:
        cpu_vit(config, patch_size=patch)
        cpu_adamw(config, **({"learning_rate": 5e-4, "weight_decay": 0.04}
                             if method in DISTILLATION_METHODS else {}))
    if method in DISTILLATION_METHODS:
        config.optimizer.final_weight_decay = 0.4
        config.optimizer["clip_per_part" if method == "dinov2" else "clip_per_tensor"] = 3.0
    config[method] = dict(CPU_SECTIONS[method])
    return config


# The GPU/TPU configs (configs/<method>_{cifar10,imagenet}.py).
def full_run(method: str, dataset: str, *, batch_size: int,
             epochs: float) -> ml_collections.ConfigDict:
    """``base`` with a recipe's batch size and length; ImageNet runs compute in bfloat16
    and checkpoint every 5000 steps, CIFAR ones every 2000."""
    config = base(method, dataset)
    config.batch_size = batch_size
    config.epochs = epochs
    imagenet = dataset == "imagenet"
    if imagenet:
        config.dtype = "bfloat16"
    config.checkpoint.every_steps = 5000 if imagenet else 2000
    return config


def imagenet_multicrop(config: ml_collections.ConfigDict) -> None:
    """DINO's ViT-S/16 multi-crop (facebookresearch/dino README): 2×224 of scale
    (0.25, 1) and 10×96 of (0.05, 0.25), DINO's augmentation."""
    config.data.recipe = "multicrop"
    config.data.recipe_kwargs = dict(style="dino", global_size=224, local_size=96,
                                     num_local=10, global_scale=(0.25, 1.0),
                                     local_scale=(0.05, 0.25),
                                     normalization=config.data.recipe_kwargs.normalization)


def ibot_vit_recipe(config: ml_collections.ConfigDict) -> None:
    """iBOT's ViT-S/16 optimiser and ``ibot`` section (bytedance/ibot README): AdamW lr
    5e-4 per 256 after 10 warm-up epochs, cosine to 1e-6, wd 0.04 -> 0.4, per-tensor
    clipping 3.0; a head 2048-2048-256 -> 8192 shared by CLS and patches with a trainable
    last-layer norm, frozen the first epoch; teacher τ 0.04 -> 0.07 over 30 epochs for
    both; masks: half the global crops, ratio U(0.1, 0.5)."""
    config.optimizer = dict(name="adamw", base_learning_rate=5e-4, final_learning_rate=1e-6,
                            warmup_epochs=10, weight_decay=0.04, final_weight_decay=0.4,
                            b1=0.9, b2=0.999, clip_per_tensor=3.0)
    config.ibot = dict(CPU_SECTIONS["ibot"], out_dim=8192, patch_out_dim=8192,
                       hidden_dim=2048, bottleneck_dim=256, norm_last_layer=False,
                       teacher_temp=0.07, teacher_patch_temp=0.07,
                       warmup_teacher_temp_epochs=30, freeze_last_layer=1.0)


def dinov2_vit_recipe(config: ml_collections.ConfigDict, *, official_epoch: float) -> None:
    """DINOv2's default recipe (facebookresearch/dinov2 ``ssl_default_config.yaml``, as
    ``vitl16_short.yaml`` trains): AdamW lr 0.004 × √(batch/1024) after 10 warm-up epochs,
    cosine to 1e-6, wd 0.04 -> 0.4, clipping 3.0 per part, layer-wise lr decay 0.9 with
    the patch embedding ×0.2; heads 2048-2048-256 -> 65536 (one shared by CLS and
    patches, last-layer norm trainable, frozen the first epoch); teacher 0.992 -> 1, τ
    0.04 -> 0.07 over 30 epochs; KoLeo 0.1; masks on half the global crops at (0.1, 0.5).
    ``official_epoch``: the training epochs one of DINOv2's epochs is (its
    ``OFFICIAL_EPOCH_LENGTH``: 1250 iterations whatever the data)."""
    config.optimizer = dict(name="adamw", base_learning_rate=0.004, lr_scaling="sqrt",
                            final_learning_rate=1e-6, warmup_epochs=10 * official_epoch,
                            weight_decay=0.04, final_weight_decay=0.4, b1=0.9, b2=0.999,
                            clip_per_part=3.0, layer_decay=0.9, patch_embed_lr_mult=0.2)
    config.dinov2 = dict(CPU_SECTIONS["dinov2"], out_dim=65536, hidden_dim=2048,
                         bottleneck_dim=256, patch_out_dim=65536, patch_hidden_dim=2048,
                         patch_bottleneck_dim=256, teacher_temp=0.07,
                         warmup_teacher_temp_epochs=30 * official_epoch,
                         freeze_last_layer=official_epoch)


def ijepa_recipe(config: ml_collections.ConfigDict, *, predictor_depth: int) -> None:
    """facebookresearch/ijepa ``configs/in1k_vith14_ep300.yaml``: AdamW at lr 1e-3 for a
    batch of 2048 (absolute there: 1.25e-4 per 256 here) after 40 warm-up epochs from
    2e-4, cosine to 1e-6; wd 0.04 -> 0.4 (cosine); no clipping; EMA 0.996 -> 1 linear;
    a predictor of width 384; 4 targets of scale 0.15-0.2 and aspect 0.75-1.5, a
    context of scale 0.85-1, min_keep 10; crops of scale 0.3-1 without flip; a ViT
    without CLS token and with the fixed sin-cos position embedding."""
    ijepa_crops(config)
    config.model.backbone_kwargs = dict(class_token=False, pos_embed="sincos",
                                        image_size=config.data.crop_size)
    config.optimizer = dict(name="adamw", base_learning_rate=1e-3 * 256 / 2048,
                            initial_learning_rate=2e-4, final_learning_rate=1e-6,
                            warmup_epochs=40, weight_decay=0.04, final_weight_decay=0.4,
                            b1=0.9, b2=0.999)
    config.ijepa = dict(CPU_SECTIONS["ijepa"], min_keep=10, predictor_dim=384,
                        predictor_depth=predictor_depth)


def qbheat_recipe(config: ml_collections.ConfigDict) -> None:
    """QB-Heat's pre-training, which the paper does not give: MAE's (facebookresearch/mae
    PRETRAIN.md) — AdamW lr 1.5e-4 per 256, β₂ 0.95, wd 0.05, 40 warm-up epochs, cosine;
    crops of scale 0.2-1 with flip; a decoder of 8 blocks of width 512, 16 heads; the
    loss on per-patch normalised pixels."""
    config.data.recipe = "mae"
    config.data.recipe_kwargs.update(scale=(0.2, 1.0))
    config.optimizer = dict(name="adamw", base_learning_rate=1.5e-4, final_learning_rate=0.0,
                            warmup_epochs=40, weight_decay=0.05, b1=0.9, b2=0.95)
    config.qbheat = dict(decoder_dim=512, decoder_depth=8, decoder_heads=16,
                         norm_pix_loss=True)


def resnet_lars(method: str, dataset: str, *, learning_rate: float, weight_decay: float,
                batch_size: int = 256, epochs: float = 1000,
                final_learning_rate: float = 0.0,
                trust_coefficient: float | None = None) -> ml_collections.ConfigDict:
    """``method`` on a ResNet with LARS (lr per 256 images, 10 warm-up epochs then cosine
    to the absolute ``final_learning_rate``; no decay or adaptation for biases and norms).

    ``cifar10``: ResNet-18 with the CIFAR stem and LARS η 0.02, as solo-learn's
    scripts/pretrain/cifar/*.yaml; ``imagenet``: ResNet-50 and η 0.001, as the official
    codes. ``trust_coefficient`` overrides η.
    """
    config = full_run(method, dataset, batch_size=batch_size, epochs=epochs)
    imagenet = dataset == "imagenet"
    config.model.backbone = "resnet50" if imagenet else "resnet18"
    config.model.backbone_kwargs = {} if imagenet else dict(cifar_stem=True)
    if trust_coefficient is None:
        trust_coefficient = 0.001 if imagenet else 0.02
    config.optimizer = dict(name="lars", base_learning_rate=learning_rate,
                            final_learning_rate=final_learning_rate, warmup_epochs=10,
                            weight_decay=weight_decay, momentum=0.9,
                            trust_coefficient=trust_coefficient)
    return config


def from_file(path: str | os.PathLike) -> ml_collections.ConfigDict:
    """``get_config()`` of the config file at ``path`` (a configs/*.py file)."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0],
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


# --- Validation: a config is checked whole before anything is built, written or computed.

class ConfigError(ValueError):
    """A config that cannot train: one line naming the key, its value and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a key may hold: ``allowed`` says it (in the error), ``accepts`` tests it.
    An ``optional`` key may be absent or None: the code that reads it has a default."""
    allowed: str
    accepts: Callable[[Any], bool]
    optional: bool = False


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum: int | None = None) -> Rule:
    if minimum is None:
        return Rule("an integer", _is_integer)
    return Rule(f"an integer >= {minimum}", lambda v: _is_integer(v) and v >= minimum)


def number(low: float, high: float = math.inf, *, low_open: bool = False,
           high_open: bool = False) -> Rule:
    """A finite number from ``low`` to ``high``, each end included unless ``*_open``."""
    def accepts(v):
        return (_is_number(v) and (v > low if low_open else v >= low)
                and (v < high if high_open else v <= high))
    if high == math.inf:
        return Rule(f"a number {'>' if low_open else '>='} {low:g}", accepts)
    brackets = "(" if low_open else "[", ")" if high_open else "]"
    return Rule(f"a number in {brackets[0]}{low:g}, {high:g}{brackets[1]}", accepts)


def choice(names) -> Rule:
    names = tuple(names)
    return Rule(f"one of {', '.join(names)}", lambda v: isinstance(v, str) and v in names)


def optional(rule: Rule) -> Rule:
    return Rule(f"{rule.allowed} or None", lambda v: v is None or rule.accepts(v), optional=True)


def sequence(minimum: int, *, distinct: bool = False, what: str = "integers") -> Rule:
    """A non-empty tuple of integers >= ``minimum``."""
    def accepts(v):
        return (isinstance(v, (tuple, list)) and len(v) > 0
                and all(_is_integer(x) and x >= minimum for x in v)
                and (not distinct or len(set(v)) == len(v)))
    return Rule(f"a non-empty tuple of {'distinct ' if distinct else ''}{what} >= {minimum}",
                accepts)


def _range_rule(what: str, accepts_end) -> Rule:
    return Rule(f"a pair (low, high) of {what}, low <= high", lambda v: (
        isinstance(v, (tuple, list)) and len(v) == 2 and all(map(accepts_end, v))
        and v[0] <= v[1]))


def fraction_range() -> Rule:
    return _range_rule("numbers in (0, 1]", lambda x: _is_number(x) and 0 < x <= 1)


def positive_range() -> Rule:
    return _range_rule("numbers > 0", lambda x: _is_number(x) and x > 0)


SOURCE_NAMES = ("digits", "fashion_mnist")  # the forms of data/sources.py's get_source
SOURCE_PREFIXES = ("folder:", "npz:", "tfds:")
SOURCE = Rule("digits, fashion_mnist, folder:<path>, npz:<path> or tfds:<name>",
              lambda v: isinstance(v, str) and (v in SOURCE_NAMES or any(
                  v.startswith(p) and v != p for p in SOURCE_PREFIXES)))
SECTION = Rule("a section of keys (a dict)", lambda v: isinstance(v, ml_collections.ConfigDict))
BOOLEAN = Rule("True or False", lambda v: isinstance(v, bool))
TEXT = Rule("a string", lambda v: isinstance(v, str))
NAME = Rule("a non-empty string", lambda v: isinstance(v, str) and bool(v))
POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
FRACTION = number(0, 1)
MOMENTUM = number(0, 1, high_open=True)
WIDTH = integer(1)
HIDDEN_WIDTHS = Rule("a tuple of integers >= 1 (empty: no hidden layer)", lambda v: isinstance(
    v, (tuple, list)) and all(_is_integer(x) and x >= 1 for x in v))

# The optimizers of optim.optimizer. The keys that only another one reads (momentum on
# adamw, b1 on sgd) are allowed: --config.optimizer.name=sgd cannot remove adamw's b1.
OPTIMIZERS = ("lars", "adamw", "sgd")

# Each method's section, as jax_ssl/methods/<method>.py reads it.
METHOD_RULES = {
    "simclr": dict(temperature=POSITIVE, projector_dim=WIDTH, projector_layers=WIDTH,
                   projector_hidden_dim=optional(WIDTH)),  # None: the backbone's width
    "moco_v3": dict(temperature=POSITIVE, base_momentum=FRACTION, projector_layers=WIDTH,
                    hidden_dim=WIDTH, output_dim=WIDTH),
    "swav": dict(hidden_dim=WIDTH, output_dim=WIDTH, num_prototypes=WIDTH,
                 temperature=POSITIVE, epsilon=POSITIVE, sinkhorn_iterations=WIDTH,
                 crops_for_assign=sequence(0, distinct=True, what="crop indices"),
                 freeze_prototypes_steps=integer(0), queue_length=integer(0),
                 queue_start_epoch=NON_NEGATIVE),
    "dino": dict(out_dim=WIDTH, hidden_dim=WIDTH, bottleneck_dim=WIDTH, use_bn_in_head=BOOLEAN,
                 norm_last_layer=BOOLEAN, base_momentum=FRACTION, student_temp=POSITIVE,
                 warmup_teacher_temp=POSITIVE, teacher_temp=POSITIVE,
                 warmup_teacher_temp_epochs=NON_NEGATIVE, center_momentum=FRACTION,
                 freeze_last_layer=NON_NEGATIVE),
    "ibot": dict(out_dim=WIDTH, patch_out_dim=WIDTH, hidden_dim=WIDTH, bottleneck_dim=WIDTH,
                 norm_last_layer=BOOLEAN, shared_head=BOOLEAN, shared_head_teacher=BOOLEAN,
                 base_momentum=FRACTION, student_temp=POSITIVE, warmup_teacher_temp=POSITIVE,
                 teacher_temp=POSITIVE, warmup_teacher_patch_temp=POSITIVE,
                 teacher_patch_temp=POSITIVE, warmup_teacher_temp_epochs=NON_NEGATIVE,
                 center_momentum=FRACTION, center_momentum2=FRACTION, lambda1=NON_NEGATIVE,
                 lambda2=NON_NEGATIVE, mask_probability=FRACTION, pred_ratio=FRACTION,
                 pred_ratio_var=FRACTION, freeze_last_layer=NON_NEGATIVE),
    "dinov2": dict(out_dim=WIDTH, hidden_dim=WIDTH, bottleneck_dim=WIDTH,
                   separate_head=BOOLEAN, patch_out_dim=WIDTH, patch_hidden_dim=WIDTH,
                   patch_bottleneck_dim=WIDTH, base_momentum=FRACTION, student_temp=POSITIVE,
                   warmup_teacher_temp=POSITIVE, teacher_temp=POSITIVE,
                   warmup_teacher_temp_epochs=NON_NEGATIVE,
                   centering=choice(("centering", "sinkhorn_knopp")),
                   center_momentum=FRACTION, dino_weight=NON_NEGATIVE,
                   ibot_weight=NON_NEGATIVE, koleo_weight=NON_NEGATIVE,
                   mask_probability=FRACTION, mask_ratio_min=FRACTION,
                   mask_ratio_max=FRACTION, freeze_last_layer=NON_NEGATIVE),
    # mask_ratio 0 masks no patch (the loss divides by the masked count); 1 keeps none.
    "mae": dict(mask_ratio=number(0, 1, low_open=True, high_open=True), norm_pix_loss=BOOLEAN),
    "ijepa": dict(num_targets=WIDTH, target_scale=fraction_range(),
                  target_aspect_ratio=positive_range(), context_scale=fraction_range(),
                  min_keep=integer(0), predictor_dim=WIDTH, predictor_depth=WIDTH,
                  base_momentum=FRACTION),
    "qbheat": dict(decoder_dim=WIDTH, decoder_depth=integer(0), decoder_heads=WIDTH,
                   norm_pix_loss=BOOLEAN),
    "byol": dict(base_momentum=FRACTION, hidden_dim=WIDTH, output_dim=WIDTH),
    "barlow_twins": dict(projector_sizes=sequence(1), lambd=NON_NEGATIVE),
    "vicreg": dict(projector_sizes=sequence(1), sim_coeff=NON_NEGATIVE,
                   std_coeff=NON_NEGATIVE, cov_coeff=NON_NEGATIVE),
    "rotation": dict(hidden_dims=HIDDEN_WIDTHS),
    # crop_dim 0: the crops' representations go to the classifier as they are
    "jigsaw": dict(num_permutations=WIDTH, crop_dim=integer(0), hidden_dims=HIDDEN_WIDTHS),
    "relative_position": dict(crop_dim=integer(0), hidden_dims=HIDDEN_WIDTHS),
    "pirl": dict(output_dim=WIDTH, crop_dim=WIDTH, temperature=POSITIVE, lambd=FRACTION,
                 num_negatives=WIDTH, momentum=MOMENTUM),
}
# The recipes making the batches each method's loss_fn reads ("views", the multi-crop
# views or "image").
METHOD_RECIPES = {**dict.fromkeys(("simclr", "moco_v3", "byol", "barlow_twins", "vicreg"),
                                  ("simclr", "byol")),
                  **dict.fromkeys(MULTICROP_METHODS, ("multicrop",)),
                  "mae": ("mae",), "ijepa": ("mae",), "qbheat": ("mae",),
                  # RotNet rotates single images: the crop-and-flip recipe
                  "rotation": ("mae",), "jigsaw": ("jigsaw",),
                  "relative_position": ("relative_position",), "pirl": ("pirl",)}
# The registries of jax_ssl.models that each method's backbone may come from.
METHOD_BACKBONES = {**dict.fromkeys(METHOD_RULES, ("RESNETS", "VITS")), "mae": ("MAES",),
                    # they mask patch tokens
                    "ibot": ("VITS",), "dinov2": ("VITS",), "ijepa": ("VITS",)}
# Backbone fields that model.backbone_kwargs may not set, and why.
RESERVED_BACKBONE_FIELDS = {
    "dtype": "the key dtype sets it", "axis_name": "the trainer sets it",
    "mask_ratio": "the key mae.mask_ratio sets it",
    "mask_token": "the method adds it where it masks patches (iBOT, DINOv2)",
    "stage_sizes": "the backbone's name fixes it", "block_cls": "the backbone's name fixes it",
    "parent": "Flax sets it", "name": "Flax sets it"}
# Sections whose keys are another function's arguments, checked against its signature.
OPEN_SECTIONS = ("data.recipe_kwargs", "model.backbone_kwargs")


@functools.cache
def trainer_rules() -> dict[str, Rule]:
    """The rule of every trainer key (those of ``KEY_HELP``) and section; the names come
    from the registries, imported on the first call."""
    from jax_ssl import models
    from jax_ssl.data import recipes
    from jax_ssl.methods import common

    return {
        "method": choice(methods.NAMES), "seed": integer(), "batch_size": integer(1),
        "epochs": NON_NEGATIVE, "total_steps": optional(integer(0)),
        "dtype": choice(common.DTYPES), "grad_accum_steps": optional(integer(1)),
        "log_every": optional(integer(1)),
        "data": SECTION, "data.source": SOURCE, "data.split": NAME, "data.eval_split": NAME,
        "data.eval_resize_size": integer(1), "data.data_dir": optional(NAME),
        "data.image_size": optional(integer(1)), "data.recipe": choice(recipes.RECIPES),
        "data.recipe_kwargs": optional(SECTION), "data.crop_size": integer(1),
        "data.augment_on_device": optional(BOOLEAN),
        "model": SECTION, "model.backbone": choice([*models.BACKBONES, *models.MAES]),
        "model.backbone_kwargs": optional(SECTION),
        "optimizer": SECTION, "optimizer.name": choice(OPTIMIZERS),
        "optimizer.base_learning_rate": NON_NEGATIVE,
        "optimizer.final_learning_rate": optional(NON_NEGATIVE),
        "optimizer.warmup_epochs": NON_NEGATIVE, "optimizer.weight_decay": NON_NEGATIVE,
        "optimizer.initial_learning_rate": optional(NON_NEGATIVE),
        "optimizer.final_weight_decay": optional(NON_NEGATIVE),
        "optimizer.momentum": optional(MOMENTUM), "optimizer.nesterov": optional(BOOLEAN),
        "optimizer.trust_coefficient": optional(POSITIVE), "optimizer.b1": optional(MOMENTUM),
        "optimizer.b2": optional(MOMENTUM),
        "optimizer.clip_per_tensor": optional(NON_NEGATIVE),  # 0: no clipping
        "optimizer.clip_per_part": optional(NON_NEGATIVE),
        "optimizer.lr_scaling": optional(choice(("linear", "sqrt"))),
        "optimizer.layer_decay": optional(number(0, 1, low_open=True)),
        "optimizer.patch_embed_lr_mult": optional(POSITIVE),
        "checkpoint": SECTION, "checkpoint.every_steps": integer(1),
        "checkpoint.keep": integer(1), "checkpoint.keep_every": optional(integer(0)),
        "distributed": optional(SECTION), "distributed.enabled": optional(BOOLEAN),
        "distributed.coordinator_address": optional(TEXT),
        "distributed.num_processes": optional(integer(0)),
        "distributed.process_id": optional(integer(-1)),
        "distributed.cpu_collectives": optional(TEXT),
    }


MISSING = object()


def _lookup(config, key: str):
    """The value at the dotted ``key`` of ``config``, or ``MISSING``."""
    value = config
    for part in key.split("."):
        if not isinstance(value, ml_collections.ConfigDict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _shown(value) -> str:
    """``value`` on one short line."""
    if isinstance(value, ml_collections.ConfigDict):
        value = value.to_dict()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _hint(key: str, known, owners: dict[str, str]) -> str:
    """What to do about ``key``, which is none of ``known``: who else reads it, else the
    closest known key, else the known ones."""
    if key in owners:
        return f"it belongs to {owners[key]}"
    by_name = {k.rpartition(".")[2]: k for k in known}  # a shared section is no likeness
    if close := difflib.get_close_matches(key.rpartition(".")[2], sorted(by_name), n=1):
        return f"did you mean {by_name[close[0]]}?"
    return f"the known ones are {', '.join(sorted(known))}"


def _either(names) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    names = list(names)
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _owners(tables: dict[str, tuple], kind: str) -> dict[str, str]:
    """``{key: "<kind> a or b"}``: for each key of ``tables`` (name -> keys), the names
    whose keys hold it."""
    names = {}
    for name, keys in tables.items():
        for key in keys:
            names.setdefault(key, []).append(name)
    return {key: f"{kind} {_either(owners)}" for key, owners in names.items()}


def _rules_for(config) -> tuple[dict[str, Rule], dict[str, str]]:
    """The rules of ``config``'s keys (the trainer's and its method's section), and for
    the other methods' sections, whose they are."""
    method = config.method
    rules = {**trainer_rules(), method: SECTION,
             **{f"{method}.{key}": rule for key, rule in METHOD_RULES[method].items()}}
    return rules, {name: f"method {name}, not {method}" for name in METHOD_RULES
                   if name != method}


def _value_problem(config, key: str, rule: Rule) -> str | None:
    value = _lookup(config, key)
    if value is MISSING or value is None:
        parent = key.rpartition(".")[0]
        if rule.optional or (parent and _lookup(config, parent) in (MISSING, None)):
            return None  # an absent optional section has no keys to check
        return f"{key} is not set; it must be {rule.allowed}"
    if not rule.accepts(value):
        return f"{key}={_shown(value)} is invalid: it must be {rule.allowed}"
    return None


def _keys(config, prefix: str = ""):
    """``(dotted key, value)`` of every key, sections included, not descending into
    ``OPEN_SECTIONS``."""
    for key, value in config.items():
        yield prefix + key, value
        if isinstance(value, ml_collections.ConfigDict) and prefix + key not in OPEN_SECTIONS:
            yield from _keys(value, f"{prefix}{key}.")


def _key_problems(config):
    """Keys that no rule of ``config`` knows, then keys it needs that are not set or out
    of range, in the order of the rules."""
    rules, owners = _rules_for(config)
    unknown = []  # as "key.": the keys inside an unknown section are not listed too
    for key, value in _keys(config):
        section = key.rpartition(".")[0]
        if key not in rules and not key.startswith(tuple(unknown)):
            unknown.append(key + ".")
            siblings = [k for k in rules if k.rpartition(".")[0] == section]
            yield (f"{key}={_shown(value)} is not a key of {section or 'the config'}; "
                   + _hint(key, siblings, owners))
    for key, rule in rules.items():
        if problem := _value_problem(config, key, rule):
            yield problem


def _backbone_module(name: str):
    """The Flax module class that backbone ``name``'s constructor builds."""
    from jax_ssl import models

    return typing.get_type_hints({**models.BACKBONES, **models.MAES}[name])["return"]


def _argument_problems(config):
    """Keys of ``OPEN_SECTIONS`` that the recipe or the backbone does not take."""
    from jax_ssl import models
    from jax_ssl.data import recipes

    arguments = {name: tuple(inspect.signature(fn).parameters)[2:]  # after (image, seed)
                 for name, fn in recipes.RECIPES.items()}
    recipe = config.data.recipe
    owners = _owners(arguments, "recipe")
    for key, value in (config.data.get("recipe_kwargs") or {}).items():
        if key not in arguments[recipe]:
            yield (f"data.recipe_kwargs.{key}={_shown(value)} is not an argument of recipe "
                   f"{recipe}; " + _hint(key, arguments[recipe], owners))

    families = {registry: _backbone_module(next(iter(getattr(models, registry))))
                for registry in ("RESNETS", "VITS", "MAES")}
    fields = {module.__name__: tuple(f.name for f in dataclasses.fields(module)
                                     if f.name not in RESERVED_BACKBONE_FIELDS)
              for module in families.values()}
    module = _backbone_module(config.model.backbone).__name__
    owners = _owners(fields, "the backbones of")
    for key, value in (config.model.get("backbone_kwargs") or {}).items():
        setting = f"model.backbone_kwargs.{key}={_shown(value)}"
        if key in RESERVED_BACKBONE_FIELDS:
            yield f"{setting} cannot be set here: {RESERVED_BACKBONE_FIELDS[key]}"
        elif key not in fields[module]:
            yield (f"{setting} is not a field of {config.model.backbone} ({module}); "
                   + _hint(key, fields[module], owners))


def _trains_a_step(config) -> str | None:
    if not config.get("total_steps") and config.epochs <= 0:
        return (f"epochs={_shown(config.epochs)} with total_steps=0 trains nothing; set epochs "
                "> 0 (or total_steps > 0).")
    return None


def _recipe_fits_method(config) -> str | None:
    fitting = METHOD_RECIPES[config.method]
    if config.data.recipe not in fitting:
        return (f"data.recipe={config.data.recipe!r} does not make the batches method "
                f"{config.method} trains on; use {' or '.join(fitting)}.")
    return None


def _recipe_arguments_fit(config) -> str | None:
    """The recipe's own checks of its arguments (e.g. a jigsaw tile larger than its cell)."""
    from jax_ssl.data import recipes

    try:
        recipes.make_recipe(config.data.recipe, **(config.data.get("recipe_kwargs") or {}))
    except ValueError as e:
        return f"data.recipe_kwargs of recipe {config.data.recipe}: {e}"
    return None


def _jigsaw_classes_are_the_recipes(config) -> str | None:
    if config.method != "jigsaw":
        return None
    from jax_ssl.data import recipes

    made = (config.data.get("recipe_kwargs") or {}).get(
        "num_permutations", inspect.signature(recipes.jigsaw).parameters[
            "num_permutations"].default)
    if made != config.jigsaw.num_permutations:
        return (f"jigsaw.num_permutations={config.jigsaw.num_permutations} is not the "
                f"recipe's data.recipe_kwargs.num_permutations={made}; set them equal.")
    return None


def _backbone_fits_method(config) -> str | None:
    from jax_ssl import models

    registries = METHOD_BACKBONES[config.method]
    names = [name for registry in registries for name in getattr(models, registry)]
    if config.model.backbone not in names:
        return (f"model.backbone={config.model.backbone!r} is not a backbone of method "
                f"{config.method}; use one of {', '.join(names)}.")
    return None


def _layer_decay_needs_a_vit(config) -> str | None:
    from jax_ssl import models

    if config.optimizer.get("layer_decay") is not None and config.model.backbone not in models.VITS:
        return (f"optimizer.layer_decay decays the learning rate over a ViT's blocks, but "
                f"model.backbone={config.model.backbone!r} is not a ViT; remove the key.")
    return None


def _mask_ratios_ordered(config) -> str | None:
    if config.method != "dinov2" or config.dinov2.mask_ratio_min <= config.dinov2.mask_ratio_max:
        return None
    return (f"dinov2.mask_ratio_min={config.dinov2.mask_ratio_min} is above "
            f"dinov2.mask_ratio_max={config.dinov2.mask_ratio_max}; swap them.")


def _eval_resize_covers_the_crop(config) -> str | None:
    data = config.data
    if data.eval_resize_size < data.crop_size:
        return (f"data.eval_resize_size={data.eval_resize_size} is smaller than "
                f"data.crop_size={data.crop_size}: the evaluation crop would not fit; make it "
                f">= {data.crop_size}.")
    return None


def _process_id_in_range(config) -> str | None:
    distributed = config.get("distributed") or {}
    processes, index = distributed.get("num_processes", 0), distributed.get("process_id", -1)
    if processes > 0 and index >= processes:
        return (f"distributed.process_id={index} is not below "
                f"distributed.num_processes={processes}.")
    return None


def _accumulation_splits_the_batch(config, device_count: int | None = None) -> str | None:
    """Each device's share of the batch splits into ``grad_accum_steps`` micro-batches
    (train.make_train_step reshapes it so); without ``device_count``, the global batch."""
    batch, accum = config.batch_size, config.get("grad_accum_steps") or 1
    if device_count is not None and batch % device_count:
        return (f"batch_size={batch} is not divisible by the {device_count} devices; choose a "
                f"multiple of {device_count}.")
    local = batch // (device_count or 1)
    if local % accum:
        share = "batch_size" if device_count is None else (
            f"per-device batch (batch_size {batch} / {device_count} devices)")
        return (f"grad_accum_steps={accum} does not divide the {share} of {local}; choose a "
                f"divisor of {local}.")
    return None


# Checks between keys (with _accumulation_splits_the_batch, which also takes the device
# count); each may assume that every key on its own is valid.
COMBINATIONS = (_trains_a_step, _recipe_fits_method, _recipe_arguments_fit,
                _jigsaw_classes_are_the_recipes, _backbone_fits_method,
                _layer_decay_needs_a_vit, _mask_ratios_ordered, _eval_resize_covers_the_crop,
                _process_id_in_range)


def problems(config, device_count: int | None = None):
    """The problems of ``config`` as one-line messages, lazily: first the keys that choose
    the other rules (method, optimizer), then every key, then the arguments of the recipe
    and the backbone, then the combinations. Each stage runs only if the ones before found
    nothing, since its rules read what they check."""
    rules = trainer_rules()
    stages = (
        lambda: (p for key in ("method", "optimizer", "optimizer.name")
                 if (p := _value_problem(config, key, rules[key]))),
        lambda: _key_problems(config),
        lambda: _argument_problems(config),
        lambda: [p for check in COMBINATIONS if (p := check(config))]
        + list(filter(None, [_accumulation_splits_the_batch(config, device_count)])),
    )
    for stage in stages:
        found = list(stage())
        yield from found
        if found:
            return


def validate(config: ml_collections.ConfigDict, device_count: int | None = None) -> None:
    """Raises ``ConfigError`` with the first problem of ``config`` (see ``problems``).

    Builds nothing and touches no file: ranges, names (method, backbone, recipe,
    optimizer, dtype, the form of the data source), keys (unknown ones get the closest
    known one), the recipe's and backbone's arguments against their signatures, and the
    combinations of ``COMBINATIONS``. With ``device_count``, also that the devices and
    ``grad_accum_steps`` split the batch evenly.
    """
    if problem := next(problems(config, device_count), None):
        raise ConfigError(problem)
