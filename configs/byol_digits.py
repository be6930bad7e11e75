"""BYOL on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/byol_digits.py --workdir runs/byol_digits

Source: deepmind-research/byol (predictor, EMA target 0.996 → 1, symmetric loss) scaled
to a short CPU run: the CPU ViT, heads of 512-128, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("byol", "digits")
