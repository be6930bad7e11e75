"""SimCLR, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/simclr_cifar10.py --workdir runs/simclr_cifar10

Source: vturrisi/solo-learn scripts/pretrain/cifar/simclr.yaml (LARS lr 0.4 at batch 256,
wd 1e-5, τ 0.2, projector 2048-256, 1000 epochs, warm-up 10), whose ResNet-18 reaches
90.7% linear top-1 on CIFAR-10; google-research/simclr's CIFAR recipe for the
augmentation (colour strength 0.5, no blur at 32 px). Needs TFDS's cifar10 prepared in
``--config.data.data_dir``.
"""
from jax_ssl.config import base


def get_config():
    config = base("simclr", "cifar10")
    config.batch_size = 256
    config.epochs = 1000
    config.data.recipe_kwargs.update(dict(scale=(0.08, 1.0), blur=0.0, strength=0.5))
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True)
    config.simclr = dict(temperature=0.2, projector_hidden_dim=2048, projector_dim=256,
                         projector_layers=2)
    config.optimizer = dict(name="lars", base_learning_rate=0.4, final_learning_rate=0.0,
                            warmup_epochs=10, weight_decay=1e-5, momentum=0.9)
    config.checkpoint.every_steps = 2000
    return config
