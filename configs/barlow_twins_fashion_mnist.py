r"""Barlow Twins on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/barlow_twins_fashion_mnist.py \
        --workdir runs/bt_fashion_mnist

Source: facebookresearch/barlowtwins (λ 0.0051, 3-layer projector) scaled to a short CPU
run: the CPU ViT, projector 512-512-512, AdamW, BYOL's views without blur.
Measured here (1 epoch = 234 steps of 256; 445 ms a step in
experiments/bench/train.py, so about 1.7 min of training on 2 idle cores):
DINO kNN top-1 of the backbone's features 77.0% with all labels, 64.2% with 1%
(raw pixels: 85.7% / 73.6%; the SimCLR demo: 79.2% / 67.5%).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("barlow_twins", "fashion_mnist")
