r"""MAE on Fashion-MNIST (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/mae_fashion_mnist.py \
        --workdir runs/mae_fashion_mnist

Source: facebookresearch/mae main_pretrain.py (mask ratio 0.75, normalised-pixel loss,
AdamW β (0.9, 0.95), wd 0.05, crop (0.2, 1) + flip) scaled to a short CPU run: an
encoder as the CPU ViT (3 blocks of 128 on 7-px patches) and a 2-block 64-d decoder.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("mae", "fashion_mnist")
