"""MoCo v3 on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/moco_v3_digits.py --workdir runs/moco_v3_digits

Source: facebookresearch/moco-v3 (ViT settings: τ 0.2, momentum 0.99 → 1, 3-layer
projector and predictor, AdamW) scaled to a short CPU run: the CPU ViT, heads 512-128,
BYOL's views without blur.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("moco_v3", "digits")
