r"""PIRL (jigsaw), ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/pirl_cifar10.py \
        --workdir runs/pirl_cifar10 --config.data.data_dir=DIR

Source: VISSL's pirl_jigsaw_4node_resnet.yaml scaled to 32 px: image crops (0.08, 1) at
32, jigsaw crops (0.6, 1) at 30 → 9 tiles of 8 px, the same heads (512→128 per image,
512→128 per tile, 1152→128), NCE τ 0.07 with 16000 negatives, λ 0.5, a 50k-row memory
bank (momentum 0.5); SGD momentum 0.9, lr 0.03 per 256, wd 1e-4, batch 256, 800 epochs.
Published: no CIFAR-10 number (the paper's: 63.6% ImageNet linear top-1, ResNet-50).
Needs TFDS's cifar10 in DIR.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("pirl", "cifar10", batch_size=256, epochs=800)
    config.data.recipe = "pirl"
    config.data.recipe_kwargs = dict(size=32, scale=(0.08, 1.0), jigsaw_size=30,
                                     jigsaw_scale=(0.6, 1.0), tile=8,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True)
    config.optimizer = dict(name="sgd", base_learning_rate=0.03, final_learning_rate=0.0,
                            warmup_epochs=0, weight_decay=1e-4, momentum=0.9)
    config.pirl = dict(output_dim=128, crop_dim=128, temperature=0.07, lambd=0.5,
                       num_negatives=16000, momentum=0.5)
    return config
