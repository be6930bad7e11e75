r"""MAE, ViT-S/4 at 32 px on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/mae_cifar10.py \
        --workdir runs/mae_cifar10 --config.data.data_dir=DIR

Source: vturrisi/solo-learn scripts/pretrain/cifar/mae.yaml: a ViT-Small (384 wide,
12 blocks, 6 heads) on 4-px patches of 32-px images (64 tokens), the official decoder
(512 wide, 8 blocks, 16 heads), mask ratio 0.75, normalised-pixel loss, batch 256, 1000
epochs, AdamW lr 2e-4 per 256, β (0.9, 0.95), wd 0.05, 10 warm-up epochs then cosine to
0, the views of augmentations/reconstruction.yaml (crop scale (0.08, 1) + flip, no
colour). Fixed 2-D sin-cos position embeddings, as facebookresearch/mae.
Target: none published. solo-learn's README has no CIFAR MAE result; for scale, the
CIFAR MAE reproduction IcarusWizard/MAE (README: ViT-Tiny, 2000 epochs) reports 89.77%
after fine-tuning, not by linear probe. The crop here is bicubic (solo-learn: bilinear).
Needs TFDS's cifar10 prepared in DIR.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("mae", "cifar10", batch_size=256, epochs=1000)
    config.data.recipe = "mae"
    config.data.recipe_kwargs.scale = (0.08, 1.0)
    config.model.backbone = "mae_vit_s16"
    config.model.backbone_kwargs = dict(patch_size=4, image_size=32)
    config.optimizer = dict(name="adamw", base_learning_rate=2e-4, final_learning_rate=0.0,
                            warmup_epochs=10, weight_decay=0.05, b1=0.9, b2=0.95)
    config.mae = dict(mask_ratio=0.75, norm_pix_loss=True)
    return config
