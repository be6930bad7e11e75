r"""I-JEPA on Fashion-MNIST (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/ijepa_fashion_mnist.py \
        --workdir runs/ijepa_fashion_mnist
    python -m jax_ssl.evaluate --workdir runs/ijepa_fashion_mnist

Source: facebookresearch/ijepa src/train.py and configs/in1k_vith14_ep300.yaml (4 target
blocks of scale 0.15-0.2 and aspect 0.75-1.5, one context block of scale 0.85-1 minus
the targets; smooth-L1 on the layer-normed target-encoder features; EMA 0.996 -> 1
linear; wd 0.04 -> 0.4; crops of scale 0.3-1 without flip) on a CPU budget: the CPU ViT
without CLS token on 4-px patches (a 7×7 grid: on the other CPU configs' 4×4 a target
block could not hold more than min_keep patches), a 2-block 64-d predictor, AdamW,
one epoch of batches of 256.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("ijepa", "fashion_mnist")
