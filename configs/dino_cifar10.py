r"""DINO, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/dino_cifar10.py \
        --workdir runs/dino_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/dino.yaml, which trains DINO on a
ResNet-18, not a ViT (solo-learn has no CIFAR ViT recipe or result for DINO): batch 256,
1000 epochs, LARS lr 0.3 (η 0.02, 10 warm-up epochs then cosine to 0), wd 1e-6, no
gradient clipping, EMA teacher 0.9995 → 1, head 2048-2048-256 → 4096 prototypes
without BN and with the normalised last layer frozen for the first epoch, student τ 0.1,
teacher τ 0.07 from the start (solo-learn's DINO defaults), center 0.9, two 32-px
crops (no multi-crop) with the views of augmentations/asymmetric.yaml (crop scale
(0.08, 1), jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2, no blur, solarise 0 / 0.2).
Target: 89.52% linear top-1 (solo-learn README, CIFAR-10 table, ResNet18).
Not reproduced: solo-learn's LARS ``clip_lr`` and warm-up start at 3e-5; the DINO-style
multi-crop recipe resizes bicubically (solo-learn: bilinear). Needs TFDS's cifar10
prepared in DIR.
"""
from jax_ssl.config import resnet_lars, small_images_multicrop


def get_config():
    config = resnet_lars("dino", "cifar10", learning_rate=0.3, weight_decay=1e-6)
    small_images_multicrop(config, style="dino", num_local=0)
    config.data.recipe_kwargs.global_scale = (0.08, 1.0)
    config.dino = dict(out_dim=4096, hidden_dim=2048, bottleneck_dim=256, use_bn_in_head=False,
                       norm_last_layer=True, base_momentum=0.9995, student_temp=0.1,
                       warmup_teacher_temp=0.07, teacher_temp=0.07, warmup_teacher_temp_epochs=0,
                       center_momentum=0.9, freeze_last_layer=1.0)
    return config
