"""BYOL on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/byol_fashion_mnist.py --workdir runs/byol_fashion_mnist

Source: deepmind-research/byol (predictor, EMA target 0.996 → 1, symmetric loss) scaled
to a short CPU run: the CPU ViT, heads of 512-128, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_byol_recipe


def get_config():
    config = base("byol", "fashion_mnist")
    config.epochs = 1.0
    small_images_byol_recipe(config)
    cpu_vit(config, patch_size=7)
    cpu_adamw(config)
    config.byol = dict(base_momentum=0.99, hidden_dim=512, output_dim=128)
    return config
