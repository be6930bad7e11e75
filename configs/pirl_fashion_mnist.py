"""PIRL on Fashion-MNIST (CPU, one epoch on 2 cores).

    python -m jax_ssl.train --config configs/pirl_fashion_mnist.py --workdir runs/pirl
    python -m jax_ssl.evaluate --workdir runs/pirl --per_layer

Source: facebookresearch/vissl pirl_jigsaw_4node_resnet.yaml: image and jigsaw branches
sharing the backbone, NCE at τ 0.07 against a memory bank of every training image
(momentum 0.5), λ 0.5; scaled down: 4096 negatives instead of 32000, 2-px-smaller tiles
in 9–10 px cells, AdamW for a short run. The backbone is the pretext methods' CPU
ResNet-18 (width 16, CIFAR stem; jax_ssl.config.cpu_config), the one
experiments/layerwise_pretext_vs_pirl.py trains and probes per stage.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("pirl", "fashion_mnist")
