r"""QB-Heat with a ViT on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/qbheat_digits.py --workdir runs/qbheat_digits

Source: Chen et al. 2022 (arXiv 2211.13228), as configs/qbheat_fashion_mnist.py: the
CPU ViT encodes the top-left 2×2 of the 4×4 grid of 8-px patches, the heat equation's
linear steps extrapolate the rest, a 2-block decoder reconstructs it; ten epochs.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("qbheat", "digits")
