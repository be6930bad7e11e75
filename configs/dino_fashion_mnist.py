r"""DINO on Fashion-MNIST (CPU, about 3 minutes on 2 cores).

    python -m jax_ssl.train --config configs/dino_fashion_mnist.py \
        --workdir runs/dino_fashion_mnist

Source: facebookresearch/dino main_dino.py (EMA teacher 0.996 → 1, center 0.9, student
τ 0.1, teacher τ 0.04, AdamW with wd 0.04 → 0.4, per-tensor clipping 3.0) scaled to a
short CPU run: the CPU ViT, a head of 512-512-128 → 1024, 2 global + 4 local crops
without blur, no frozen last layer (the run is one to ten epochs long).
Measured here (1 epoch = 234 steps of 256; 909 ms a step in
experiments/bench/train.py, so about 3.5 min of training on 2 idle cores):
DINO kNN top-1 of the teacher's features 74.0% with all labels, 54.4% with 1%
(raw pixels: 85.7% / 73.6%; the SimCLR demo: 79.2% / 67.5%).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("dino", "fashion_mnist")
