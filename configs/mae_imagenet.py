r"""MAE, ViT-B/16 on ImageNet-1k, the official 1600-epoch recipe (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/mae_imagenet.py \
        --workdir gs://BUCKET/mae --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/mae PRETRAIN.md and main_pretrain.py (``--model
mae_vit_base_patch16 --norm_pix_loss --mask_ratio 0.75 --warmup_epochs 40 --blr 1.5e-4
--weight_decay 0.05``, effective batch 4096) for 1600 epochs (the paper's schedule of
the released ViT-B): AdamW β (0.9, 0.95), lr 1.5e-4 per 256 (2.4e-3), cosine to 0,
decoder 512 wide × 8 blocks × 16 heads, fixed 2-D sin-cos position embeddings,
RandomResizedCrop (0.2, 1) bicubic + flip.
Target: 68.0% linear top-1 (67.8% with the PyTorch code) and 83.6% fine-tuned (mae
FINETUNE.md, ViT-Base; the paper, 1600 epochs). Computes in bfloat16 (the official:
PyTorch AMP).
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("mae", "imagenet", batch_size=4096, epochs=1600)
    config.data.recipe = "mae"
    config.data.recipe_kwargs.scale = (0.2, 1.0)
    config.model.backbone = "mae_vit_b16"
    config.model.backbone_kwargs = {}
    config.optimizer = dict(name="adamw", base_learning_rate=1.5e-4, final_learning_rate=0.0,
                            warmup_epochs=40, weight_decay=0.05, b1=0.9, b2=0.95)
    config.mae = dict(mask_ratio=0.75, norm_pix_loss=True)
    return config
