r"""QB-Heat with a ViT on Fashion-MNIST (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/qbheat_fashion_mnist.py \
        --workdir runs/qbheat_fashion_mnist
    python -m jax_ssl.evaluate --workdir runs/qbheat_fashion_mnist

Source: Chen et al. 2022 (arXiv 2211.13228; no official code): the encoder sees the
top-left quarter (2×2 of the 4×4 grid of 7-px patches), the three other quarters are
extrapolated by (I + ΔA), (I + ΔB) with learned matrices, a 2-block 64-d decoder
predicts their per-patch normalised pixels (MAE's loss). The CPU ViT, MAE's CPU
optimiser (AdamW lr 6e-4 per 256, β₂ 0.95, wd 0.05), crops of scale 0.2-1 with flip,
one epoch of batches of 256. The ResNet version: configs/qbheat_resnet_fashion_mnist.py.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("qbheat", "fashion_mnist")
