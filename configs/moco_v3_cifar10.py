r"""MoCo v3, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/moco_v3_cifar10.py \
        --workdir runs/moco_v3_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/mocov3.yaml: batch 256, 1000 epochs,
LARS lr 0.3 (η 0.02, 10 warm-up epochs then cosine to 0), wd 1e-6, τ 0.2, momentum
0.99 → 1, 2-layer projector 4096-256 and predictor 4096-256 (the ResNet heads of
moco-v3), the asymmetric views of augmentations/asymmetric.yaml (crop scale
(0.08, 1), jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2, no blur, solarise 0 / 0.2).
Target: 93.10% linear top-1 (solo-learn README, CIFAR-10 table, ResNet18).
Not reproduced: solo-learn's LARS clips the adapted lr at the base lr (``clip_lr``),
and its warm-up starts at 3e-5 instead of 0. Needs TFDS's cifar10 prepared in DIR.
"""
from jax_ssl.config import resnet_lars, small_images_byol_recipe


def get_config():
    config = resnet_lars("moco_v3", "cifar10", learning_rate=0.3, weight_decay=1e-6)
    small_images_byol_recipe(config)
    config.data.recipe_kwargs.scale = (0.08, 1.0)
    config.moco_v3 = dict(temperature=0.2, base_momentum=0.99, projector_layers=2,
                          hidden_dim=4096, output_dim=256)
    return config
