r"""RotNet (rotation prediction), ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/rotation_cifar10.py \
        --workdir runs/rotation_cifar10 --config.data.data_dir=DIR
    python -m jax_ssl.evaluate --workdir runs/rotation_cifar10 --per_layer

Source: gidariss/FeatureLearningRotNet's CIFAR-10 recipe (batch 128 images in their 4
rotations, SGD Nesterov momentum 0.9, lr 0.1, wd 5e-4, 100 epochs, random crops and
flips) with a ResNet-18 instead of the paper's Network-In-Network, and a Linear
classifier on its pooled features. Published: the paper reports CIFAR-10 probes of its
NIN's conv blocks, not of a ResNet-18; no number for this pairing. The trainer's
schedule is cosine (RotNet: steps ×0.2 at epochs 30, 60, 80). Needs TFDS's cifar10 in DIR.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("rotation", "cifar10", batch_size=128, epochs=100)
    config.data.recipe = "mae"  # crop and flip; the rotations are made in the step
    config.data.recipe_kwargs.scale = (0.5, 1.0)
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True)
    config.optimizer = dict(name="sgd", base_learning_rate=0.2, final_learning_rate=0.0,
                            warmup_epochs=0, weight_decay=5e-4, momentum=0.9, nesterov=True)
    config.rotation = dict(hidden_dims=())
    return config
