r"""MoCo v3 on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/moco_v3_fashion_mnist.py \
        --workdir runs/moco_v3_fashion_mnist

Source: facebookresearch/moco-v3 (ViT settings: τ 0.2, momentum 0.99 → 1, 3-layer
projector and predictor, AdamW) scaled to a short CPU run: the CPU ViT, heads 512-128,
BYOL's views without blur.
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_byol_recipe


def get_config():
    config = base("moco_v3", "fashion_mnist")
    config.epochs = 1.0
    small_images_byol_recipe(config)
    cpu_vit(config, patch_size=7)
    cpu_adamw(config)
    config.moco_v3 = dict(temperature=0.2, base_momentum=0.99, projector_layers=3,
                          hidden_dim=512, output_dim=128)
    return config
