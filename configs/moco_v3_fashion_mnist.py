r"""MoCo v3 on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/moco_v3_fashion_mnist.py \
        --workdir runs/moco_v3_fashion_mnist

Source: facebookresearch/moco-v3 (ViT settings: τ 0.2, momentum 0.99 → 1, 3-layer
projector and predictor, AdamW) scaled to a short CPU run: the CPU ViT, heads 512-128,
BYOL's views without blur.
Measured here (1 epoch = 234 steps of 256; 639 ms a step in
experiments/bench/train.py, so about 2.5 min of training on 2 idle cores):
DINO kNN top-1 of the backbone's features 79.5% with all labels, 65.6% with 1%
(raw pixels: 85.7% / 73.6%; the SimCLR demo: 79.2% / 67.5%).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("moco_v3", "fashion_mnist")
