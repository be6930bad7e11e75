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
--print_config``).
"""
from __future__ import annotations

import importlib.util
import os

import ml_collections

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
    "data.source": "digits | fashion_mnist | folder:<path with {split}> | tfds:<name>",
    "data.split": "training split",
    "data.eval_split": "split the evaluation job tests on",
    "data.eval_resize_size": "evaluation: short side resized to this, then centre crop",
    "data.data_dir": "where the source's files are (default: its cache)",
    "data.image_size": "resize the source's images to this side first (None: as stored)",
    "data.recipe": "augmentation recipe: simclr | byol | multicrop | mae (data/recipes.py)",
    "data.recipe_kwargs": "keyword arguments of the recipe (its signature in data/recipes.py)",
    "data.crop_size": "side of the crops the model sees (evaluation crops to it too)",
    "model.backbone": "resnet18 ... resnet101 | vit_ti16 ... vit_h14 | mae_vit_* (models/)",
    "model.backbone_kwargs": "fields of the backbone module (e.g. patch_size, depth)",
    "optimizer.name": "lars | adamw | sgd",
    "optimizer.base_learning_rate": "learning rate per 256 images (x batch_size/256)",
    "optimizer.final_learning_rate": "learning rate the cosine decays to (absolute)",
    "optimizer.warmup_epochs": "linear warm-up from 0, in epochs",
    "optimizer.weight_decay": "decoupled (adamw) or L2 (lars, sgd); not biases or norms",
    "optimizer.final_weight_decay": "weight decay cosine-scheduled to this (DINO: 0.4)",
    "optimizer.momentum": "lars / sgd momentum",
    "optimizer.nesterov": "sgd: Nesterov momentum",
    "optimizer.trust_coefficient": "lars trust coefficient (eta)",
    "optimizer.b1": "adamw beta 1",
    "optimizer.b2": "adamw beta 2",
    "optimizer.clip_per_tensor": "clip each tensor's gradient to this norm (DINO: 3.0)",
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
       for method in ("simclr", "moco_v3", "swav", "dino", "mae", "byol", "barlow_twins",
                      "vicreg")},
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
# Fashion-MNIST, the CPU ViT, AdamW, and each method's official objective with heads
# shrunk to 512-wide layers.
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
    "swav": dict(hidden_dim=512, output_dim=128, num_prototypes=100, temperature=0.1,
                 epsilon=0.05, sinkhorn_iterations=3, crops_for_assign=(0, 1),
                 freeze_prototypes_steps=50, queue_length=0, queue_start_epoch=0.0),
    "mae": dict(mask_ratio=0.75, norm_pix_loss=True),
}


def cpu_config(method: str, dataset: str) -> ml_collections.ConfigDict:
    """``method`` sized for a 2-core CPU on ``digits`` or ``fashion_mnist``."""
    config = base(method, dataset)
    config.epochs = CPU_EPOCHS[dataset]
    patch = CPU_PATCH[dataset]
    if method in ("dino", "swav"):
        small_images_multicrop(config, style=method)
    elif method == "mae":
        config.data.recipe = "mae"
        config.data.recipe_kwargs.scale = (0.2, 1.0)
    else:
        small_images_byol_recipe(config)
    if method == "mae":  # the CPU ViT as encoder, a 2-block 64-d decoder
        config.model.backbone = "mae_vit_tiny"
        config.model.backbone_kwargs = dict(
            patch_size=patch, image_size=config.data.crop_size, embed_dim=128, depth=3,
            num_heads=4, decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4)
        cpu_adamw(config, learning_rate=6e-4, weight_decay=0.05)
        config.optimizer.b2 = 0.95
    else:
        cpu_vit(config, patch_size=patch)
        cpu_adamw(config, **({"learning_rate": 5e-4, "weight_decay": 0.04}
                             if method == "dino" else {}))
    if method == "dino":
        config.optimizer.final_weight_decay = 0.4
        config.optimizer.clip_per_tensor = 3.0
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
