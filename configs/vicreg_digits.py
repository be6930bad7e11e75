"""VICReg on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/vicreg_digits.py --workdir runs/vicreg_digits

Source: facebookresearch/vicreg (coefficients 25 / 25 / 1, 3-layer expander) scaled to a
short CPU run: the CPU ViT, expander 512-512-512, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("vicreg", "digits")
