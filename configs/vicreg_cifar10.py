r"""VICReg, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/vicreg_cifar10.py \
        --workdir runs/vicreg_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/vicreg.yaml: batch 256, 1000 epochs,
LARS lr 0.3 (η 0.02, 10 warm-up epochs then cosine to 0), wd 1e-4, expander
2048-2048-2048, coefficients 25 / 25 / 1, and its own symmetric views (crop scale
(0.2, 1), jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2, no blur, solarise 0.1 on both).
Target: 92.07% linear top-1 (solo-learn README, CIFAR-10 table, ResNet18).
Not reproduced: solo-learn's LARS ``clip_lr`` and warm-up start at 3e-5. Needs TFDS's
cifar10 prepared in DIR.
"""
from jax_ssl.config import resnet_lars, small_images_byol_recipe


def get_config():
    config = resnet_lars("vicreg", "cifar10", learning_rate=0.3, weight_decay=1e-4)
    small_images_byol_recipe(config)  # crop scale (0.2, 1), no blur
    config.data.recipe_kwargs.solarize = (0.1, 0.1)
    config.vicreg = dict(projector_sizes=(2048, 2048, 2048), sim_coeff=25.0, std_coeff=25.0,
                         cov_coeff=1.0)
    return config
