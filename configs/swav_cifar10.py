r"""SwAV, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/swav_cifar10.py \
        --workdir runs/swav_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/swav.yaml: batch 256, 1000 epochs,
LARS lr 0.6 (η 0.02, 10 warm-up epochs then cosine to 0), wd 1e-6, projector 2048-128,
3000 prototypes, τ 0.1, Sinkhorn ε 0.05 × 3, a queue of 3840 from epoch 50, prototypes
frozen for 2 epochs (390 steps of 256), two 32-px crops (no multi-crop) with the views
of augmentations/symmetric.yaml (crop scale (0.08, 1), jitter (0.8, 0.8, 0.8, 0.2)
p 0.8, grey 0.2, blur p 0.5).
Target: 89.17% linear top-1 (solo-learn README, CIFAR-10 table, ResNet18).
Not reproduced: solo-learn's LARS ``clip_lr`` and warm-up start at 3e-5. Needs TFDS's
cifar10 prepared in DIR.
"""
from jax_ssl.config import resnet_lars, small_images_multicrop


def get_config():
    config = resnet_lars("swav", "cifar10", learning_rate=0.6, weight_decay=1e-6)
    small_images_multicrop(config, style="swav", num_local=0)
    config.data.recipe_kwargs.update(dict(global_scale=(0.08, 1.0), blur=True))
    config.swav = dict(hidden_dim=2048, output_dim=128, num_prototypes=3000, temperature=0.1,
                       epsilon=0.05, sinkhorn_iterations=3, crops_for_assign=(0, 1),
                       freeze_prototypes_steps=2 * (50_000 // 256), queue_length=3840,
                       queue_start_epoch=50.0)
    return config
