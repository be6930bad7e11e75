"""BYOL on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/byol_digits.py --workdir runs/byol_digits

Source: deepmind-research/byol (predictor, EMA target 0.996 → 1, symmetric loss) scaled
to a short CPU run: the CPU ViT, heads of 512-128, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_byol_recipe


def get_config():
    config = base("byol", "digits")
    config.epochs = 10.0
    small_images_byol_recipe(config)
    cpu_vit(config, patch_size=8)
    cpu_adamw(config)
    config.byol = dict(base_momentum=0.99, hidden_dim=512, output_dim=128)
    return config
