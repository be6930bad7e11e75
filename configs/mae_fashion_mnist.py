r"""MAE on Fashion-MNIST (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/mae_fashion_mnist.py \
        --workdir runs/mae_fashion_mnist

Source: facebookresearch/mae main_pretrain.py (mask ratio 0.75, normalised-pixel loss,
AdamW β (0.9, 0.95), wd 0.05, crop (0.2, 1) + flip) scaled to a short CPU run: an
encoder as the CPU ViT (3 blocks of 128 on 7-px patches) and a 2-block 64-d decoder.
Measured here (1 epoch = 234 steps of 256; 158 ms a step in
experiments/bench/train.py, so about 0.6 min of training on 2 idle cores):
DINO kNN top-1 of the backbone's features 78.3% with all labels, 63.9% with 1%
(raw pixels: 85.7% / 73.6%; the SimCLR demo: 79.2% / 67.5%).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("mae", "fashion_mnist")
