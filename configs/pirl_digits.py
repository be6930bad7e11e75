"""PIRL on the bundled digits (CPU, a minute or two on 2 cores).

    python -m jax_ssl.train --config configs/pirl_digits.py --workdir runs/pirl
    python -m jax_ssl.evaluate --workdir runs/pirl --per_layer

Source: facebookresearch/vissl pirl_jigsaw_4node_resnet.yaml: image and jigsaw branches
sharing the backbone, NCE at τ 0.07 against a memory bank of every training image
(momentum 0.5), λ 0.5; scaled down: 4096 negatives instead of 32000, 2-px-smaller tiles
in 9–10 px cells, AdamW for a short run. The backbone is the pretext methods' CPU
ResNet-18 (width 16, CIFAR stem; jax_ssl.config.cpu_config).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("pirl", "digits")
