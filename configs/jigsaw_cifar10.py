r"""Jigsaw puzzles, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/jigsaw_cifar10.py \
        --workdir runs/jigsaw_cifar10 --config.data.data_dir=DIR
    python -m jax_ssl.evaluate --workdir runs/jigsaw_cifar10 --per_layer

Source: Noroozi & Favaro 2016 scaled to 32 px: 30-px crops → 10-px cells → random 8-px
tiles (their 64 of 85), 100 permutations of maximal Hamming distance (the paper's
ablation: 100 already trains well), per-tile normalisation, colour-channel jitter; the
CFN head (a 256-wide Linear + ReLU per tile, concatenation, a 1024-wide hidden layer);
SGD momentum 0.9, lr 0.1 per 256, wd 5e-4, 200 epochs. Published: no CIFAR-10 number
for this network (the paper's are AlexNet on ImageNet: 67.6% VOC07 classification).
Needs TFDS's cifar10 in DIR.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("jigsaw", "cifar10", batch_size=256, epochs=200)
    config.data.recipe = "jigsaw"
    config.data.recipe_kwargs = dict(size=30, tile=8, num_permutations=100,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True)
    config.optimizer = dict(name="sgd", base_learning_rate=0.1, final_learning_rate=0.0,
                            warmup_epochs=5, weight_decay=5e-4, momentum=0.9)
    config.jigsaw = dict(num_permutations=100, crop_dim=256, hidden_dims=(1024,))
    return config
