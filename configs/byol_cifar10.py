r"""BYOL, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/byol_cifar10.py \
        --workdir runs/byol_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/byol.yaml: batch 256, 1000 epochs,
LARS lr 1.0 (η 0.02, 10 warm-up epochs then cosine to 0), wd 1e-5, EMA target
0.99 → 1, projector and predictor 4096-256, the asymmetric views of
augmentations/asymmetric.yaml (crop scale (0.08, 1), jitter (0.4, 0.4, 0.2, 0.1) p 0.8,
grey 0.2, no blur, solarise 0 / 0.2).
Target: 92.58% linear top-1 (solo-learn README, CIFAR-10 table, ResNet18).
Not reproduced: solo-learn's LARS ``clip_lr`` and warm-up start at 3e-5; its heads' last
Linear has a bias (deepmind-research/byol's, which this follows, has none). Needs TFDS's
cifar10 prepared in DIR.
"""
from jax_ssl.config import resnet_lars, small_images_byol_recipe


def get_config():
    config = resnet_lars("byol", "cifar10", learning_rate=1.0, weight_decay=1e-5)
    small_images_byol_recipe(config)
    config.data.recipe_kwargs.scale = (0.08, 1.0)
    config.byol = dict(base_momentum=0.99, hidden_dim=4096, output_dim=256)
    return config
