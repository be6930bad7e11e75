r"""Relative patch position (context prediction), ResNet-18 (CIFAR stem) on CIFAR-10.

    python -m jax_ssl.train --config configs/relative_position_cifar10.py \
        --workdir runs/relpos_cifar10 --config.data.data_dir=DIR
    python -m jax_ssl.evaluate --workdir runs/relpos_cifar10 --per_layer

Source: Doersch, Gupta & Efros 2015 scaled to 32 px: 8-px patches, 2-px gaps, 1 px of
jitter (their 96 / 48 / 7), fc6 256 per patch, fc7 1024, 8 classes; SGD momentum 0.9,
lr 0.1 per 256, wd 5e-4, 200 epochs. Published: no CIFAR-10 number (the paper's is
VOC07 detection, 46.6% mAP). Needs TFDS's cifar10 in DIR.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("relative_position", "cifar10", batch_size=256, epochs=200)
    config.data.recipe = "relative_position"
    config.data.recipe_kwargs = dict(patch=8, gap=2, jitter=1,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True)
    config.optimizer = dict(name="sgd", base_learning_rate=0.1, final_learning_rate=0.0,
                            warmup_epochs=5, weight_decay=5e-4, momentum=0.9)
    config.relative_position = dict(crop_dim=256, hidden_dims=(1024,))
    return config
