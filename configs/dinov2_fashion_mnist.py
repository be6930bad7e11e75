r"""DINOv2 on Fashion-MNIST (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/dinov2_fashion_mnist.py \
        --workdir runs/dinov2_fashion_mnist
    python -m jax_ssl.evaluate --workdir runs/dinov2_fashion_mnist

Source: facebookresearch/dinov2 ssl_meta_arch.py and ssl_default_config.yaml (DINO's CLS
loss + iBOT's masked-patch loss through the shared head + KoLeo 0.1 on each global
crop's CLS; half of the global crops masked at stratified ratios in (0.1, 0.5), blocks
of 4+ patches on the 4×4 grid of 7-px patches; running centers 0.9; teacher 0.992 → 1;
gradient clipping 3.0 per part) on DINO's CPU settings (configs/dino_fashion_mnist.py):
the CPU ViT, heads of 512-512-128 → 1024, 2 global + 4 local crops without blur, one
epoch of batches of 256.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("dinov2", "fashion_mnist")
