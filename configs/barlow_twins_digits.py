"""Barlow Twins on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/barlow_twins_digits.py --workdir runs/bt_digits

Source: facebookresearch/barlowtwins (λ 0.0051, 3-layer projector) scaled to a short CPU
run: the CPU ViT, projector 512-512-512, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("barlow_twins", "digits")
