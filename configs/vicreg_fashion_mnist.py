r"""VICReg on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/vicreg_fashion_mnist.py \
        --workdir runs/vicreg_fashion_mnist

Source: facebookresearch/vicreg (coefficients 25 / 25 / 1, 3-layer expander) scaled to a
short CPU run: the CPU ViT, expander 512-512-512, AdamW, BYOL's views without blur.
Measured here (1 epoch = 234 steps of 256; 440 ms a step in
experiments/bench/train.py, so about 1.7 min of training on 2 idle cores):
DINO kNN top-1 of the backbone's features 77.8% with all labels, 66.4% with 1%
(raw pixels: 85.7% / 73.6%; the SimCLR demo: 79.2% / 67.5%).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("vicreg", "fashion_mnist")
