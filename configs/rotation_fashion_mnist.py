"""RotNet (rotation prediction) on Fashion-MNIST (CPU, one epoch on 2 cores).

    python -m jax_ssl.train --config configs/rotation_fashion_mnist.py --workdir runs/rotation
    python -m jax_ssl.evaluate --workdir runs/rotation --per_layer

Source: Gidaris et al. 2018, gidariss/FeatureLearningRotNet: every image in its four
rotations in the batch and a 4-way classifier (a Linear on the pooled features, as
VISSL's ResNet-50 RotNet); crops of scale (0.5, 1) and flips. The backbone is the
pretext methods' CPU ResNet-18 (width 16, CIFAR stem; jax_ssl.config.cpu_config), the
one experiments/layerwise_pretext_vs_pirl.py trains and probes per stage.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("rotation", "fashion_mnist")
