r"""VICReg on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/vicreg_fashion_mnist.py \
        --workdir runs/vicreg_fashion_mnist

Source: facebookresearch/vicreg (coefficients 25 / 25 / 1, 3-layer expander) scaled to a
short CPU run: the CPU ViT, expander 512-512-512, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_byol_recipe


def get_config():
    config = base("vicreg", "fashion_mnist")
    config.epochs = 1.0
    small_images_byol_recipe(config)
    cpu_vit(config, patch_size=7)
    cpu_adamw(config)
    config.vicreg = dict(projector_sizes=(512, 512, 512), sim_coeff=25.0, std_coeff=25.0,
                         cov_coeff=1.0)
    return config
