r"""SwAV on Fashion-MNIST (CPU, about 3 minutes on 2 cores).

    python -m jax_ssl.train --config configs/swav_fashion_mnist.py \
        --workdir runs/swav_fashion_mnist

Source: facebookresearch/swav main_swav.py (Sinkhorn ε 0.05 × 3, τ 0.1, prototypes
frozen for the first iterations, multi-crop) scaled to a short CPU run: the CPU ViT,
projector 512-128, 100 prototypes (10 classes), 2 global + 4 local crops without blur,
AdamW, prototypes frozen for 50 steps, no queue (batches of 256 suffice for 100 codes).
Measured here (1 epoch = 234 steps of 256; 747 ms a step in
experiments/bench/train.py, so about 2.9 min of training on 2 idle cores):
DINO kNN top-1 of the backbone's features 70.7% with all labels, 48.9% with 1%
(raw pixels: 85.7% / 73.6%; the SimCLR demo: 79.2% / 67.5%).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("swav", "fashion_mnist")
