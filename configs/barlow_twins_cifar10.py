r"""Barlow Twins, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/barlow_twins_cifar10.py \
        --workdir runs/barlow_twins_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/barlow.yaml: batch 256, 1000 epochs,
LARS lr 0.3 (η 0.02, 10 warm-up epochs then cosine to 0), wd 1e-4, projector
2048-2048-2048, λ 0.0051, the asymmetric views of augmentations/asymmetric.yaml (crop
scale (0.08, 1), jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2, no blur, solarise 0 / 0.2).
Target: 92.10% linear top-1 (solo-learn README, CIFAR-10 table, ResNet18).
Not reproduced: solo-learn multiplies the loss by ``scale_loss`` 0.1 (there is no such
field here, so the loss is 10× solo-learn's; LARS's trust ratio cancels the scale for
the weights, not for the biases and norms, which take plain momentum SGD); its LARS
``clip_lr`` and warm-up start at 3e-5. Needs TFDS's cifar10 prepared in DIR.
"""
from jax_ssl.config import resnet_lars, small_images_byol_recipe


def get_config():
    config = resnet_lars("barlow_twins", "cifar10", learning_rate=0.3, weight_decay=1e-4)
    small_images_byol_recipe(config)
    config.data.recipe_kwargs.scale = (0.08, 1.0)
    config.barlow_twins = dict(projector_sizes=(2048, 2048, 2048), lambd=0.0051)
    return config
