r"""Relative patch position on the bundled digits (CPU, a minute or two on 2 cores).

    python -m jax_ssl.train --config configs/relative_position_digits.py \
        --workdir runs/relative_position
    python -m jax_ssl.evaluate --workdir runs/relative_position --per_layer

Source: Doersch, Gupta & Efros 2015: a centre patch and one of its 8 neighbours with a
gap and jitter, a late-fusion siamese network (per-patch Linear + ReLU, concatenation,
classifier of the 8 positions); scaled to small images: 7–8 px patches, a 2 px gap, 1 px
of jitter. The backbone is the pretext methods' CPU ResNet-18 (width 16, CIFAR stem;
jax_ssl.config.cpu_config).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("relative_position", "digits")
