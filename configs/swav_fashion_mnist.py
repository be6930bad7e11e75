r"""SwAV on Fashion-MNIST (CPU, about 3 minutes on 2 cores).

    python -m jax_ssl.train --config configs/swav_fashion_mnist.py \
        --workdir runs/swav_fashion_mnist

Source: facebookresearch/swav main_swav.py (Sinkhorn ε 0.05 × 3, τ 0.1, prototypes
frozen for the first iterations, multi-crop) scaled to a short CPU run: the CPU ViT,
projector 512-128, 100 prototypes (10 classes), 2 global + 4 local crops without blur,
AdamW, prototypes frozen for 50 steps, no queue (batches of 256 suffice for 100 codes).
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_multicrop


def get_config():
    config = base("swav", "fashion_mnist")
    config.epochs = 1.0
    small_images_multicrop(config, style="swav")
    cpu_vit(config, patch_size=7)
    cpu_adamw(config)
    config.swav = dict(hidden_dim=512, output_dim=128, num_prototypes=100, temperature=0.1,
                       epsilon=0.05, sinkhorn_iterations=3, crops_for_assign=(0, 1),
                       freeze_prototypes_steps=50, queue_length=0, queue_start_epoch=0.0)
    return config
