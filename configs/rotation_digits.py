"""RotNet (rotation prediction) on the bundled digits (CPU, a minute or two on 2 cores).

    python -m jax_ssl.train --config configs/rotation_digits.py --workdir runs/rotation
    python -m jax_ssl.evaluate --workdir runs/rotation --per_layer

Source: Gidaris et al. 2018, gidariss/FeatureLearningRotNet: every image in its four
rotations in the batch and a 4-way classifier (a Linear on the pooled features, as
VISSL's ResNet-50 RotNet); crops of scale (0.5, 1) and flips. The backbone is the
pretext methods' CPU ResNet-18 (width 16, CIFAR stem; jax_ssl.config.cpu_config).
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("rotation", "digits")
