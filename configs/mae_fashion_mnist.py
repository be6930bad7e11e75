r"""MAE on Fashion-MNIST (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/mae_fashion_mnist.py \
        --workdir runs/mae_fashion_mnist

Source: facebookresearch/mae main_pretrain.py (mask ratio 0.75, normalised-pixel loss,
AdamW β (0.9, 0.95), wd 0.05, crop (0.2, 1) + flip) scaled to a short CPU run: an
encoder as the CPU ViT (3 blocks of 128 on 7-px patches) and a 2-block 64-d decoder.
"""
from jax_ssl.config import base, cpu_adamw


def get_config():
    config = base("mae", "fashion_mnist")
    config.epochs = 1.0
    config.data.recipe = "mae"
    config.data.recipe_kwargs.scale = (0.2, 1.0)
    config.model.backbone = "mae_vit_tiny"
    config.model.backbone_kwargs = dict(patch_size=7, image_size=28, embed_dim=128,
                                        depth=3, num_heads=4, decoder_embed_dim=64,
                                        decoder_depth=2, decoder_num_heads=4)
    cpu_adamw(config, learning_rate=1.5e-4 * 4, weight_decay=0.05)
    config.optimizer.b2 = 0.95
    config.mae = dict(mask_ratio=0.75, norm_pix_loss=True)
    return config
