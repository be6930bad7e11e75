"""Jigsaw puzzles on Fashion-MNIST (CPU, one epoch on 2 cores).

    python -m jax_ssl.train --config configs/jigsaw_fashion_mnist.py --workdir runs/jigsaw
    python -m jax_ssl.evaluate --workdir runs/jigsaw --per_layer

Source: Noroozi & Favaro 2016: 3×3 tiles shuffled by one of a max-Hamming permutation
set, a shared tile encoder, a per-tile Linear + ReLU, the concatenation through a
classifier of the permutations; scaled to small images: 100 permutations, cells of 9–10
px with tiles 2 px smaller (their 64 px in 85 px cells). The backbone is the pretext
methods' CPU ResNet-18 (width 16, CIFAR stem; jax_ssl.config.cpu_config), the one
experiments/layerwise_pretext_vs_pirl.py trains and probes per stage.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("jigsaw", "fashion_mnist")
