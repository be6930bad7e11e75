r"""DINO on Fashion-MNIST (CPU, about 3 minutes on 2 cores).

    python -m jax_ssl.train --config configs/dino_fashion_mnist.py \
        --workdir runs/dino_fashion_mnist

Source: facebookresearch/dino main_dino.py (EMA teacher 0.996 → 1, center 0.9, student
τ 0.1, teacher τ 0.04, AdamW with wd 0.04 → 0.4, per-tensor clipping 3.0) scaled to a
short CPU run: the CPU ViT, a head of 512-512-128 → 1024, 2 global + 4 local crops
without blur, no frozen last layer (the run is one to ten epochs long).
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_multicrop


def get_config():
    config = base("dino", "fashion_mnist")
    config.epochs = 1.0
    small_images_multicrop(config)
    cpu_vit(config, patch_size=7)
    cpu_adamw(config, learning_rate=5e-4, weight_decay=0.04)
    config.optimizer.final_weight_decay = 0.4
    config.optimizer.clip_per_tensor = 3.0
    config.dino = dict(out_dim=1024, hidden_dim=512, bottleneck_dim=128, use_bn_in_head=False,
                       norm_last_layer=True, base_momentum=0.996, student_temp=0.1,
                       warmup_teacher_temp=0.04, teacher_temp=0.04,
                       warmup_teacher_temp_epochs=0, center_momentum=0.9,
                       freeze_last_layer=0.0)
    return config
