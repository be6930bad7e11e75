r"""DINO on the bundled digits (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/dino_digits.py \
        --workdir runs/dino_digits

Source: facebookresearch/dino main_dino.py (EMA teacher 0.996 → 1, center 0.9, student
τ 0.1, teacher τ 0.04, AdamW with wd 0.04 → 0.4, per-tensor clipping 3.0) scaled to a
short CPU run: the CPU ViT, a head of 512-512-128 → 1024, 2 global + 4 local crops
without blur, no frozen last layer (the run is one to ten epochs long).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("dino", "digits")
