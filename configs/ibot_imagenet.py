r"""iBOT, ViT-S/16 on ImageNet-1k, the 800-epoch recipe of the released ViT-S/16 (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/ibot_imagenet.py \
        --workdir gs://BUCKET/ibot --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: bytedance/ibot README ("iBOT Pre-Training with ViTs", ViT-S/16): batch 1024
(64 × 16 GPUs), 800 epochs, AdamW lr 5e-4 per 256 after 10 warm-up epochs, cosine to
1e-6, wd 0.04 → 0.4, per-tensor clipping 3.0, EMA teacher 0.996 → 1, drop path 0.1;
head 2048-2048-256 → 8192 shared by the CLS and patch tokens (``--shared_head true``)
with a trainable last-layer norm (``--norm_last_layer false``), frozen the first epoch;
student τ 0.1, teacher τ 0.04 → 0.07 for the CLS and the patches over 30 epochs,
centers 0.9; λ₁ = λ₂ = 1; masks ``--pred_ratio 0 0.3 --pred_ratio_var 0 0.2`` (each
global crop unmasked or masked at U(0.1, 0.5), block-wise, aspect 0.3–3.3); multi-crop
2×224 (scale 0.25–1) + 10×96 (0.05–0.25) with DINO's augmentation.
Target: k-NN 75.2%, linear 77.9% top-1 (ibot README, ViT-S/16 row). Computes in
bfloat16 (losses and softmaxes stay float32).
"""
from jax_ssl.config import full_run, ibot_vit_recipe, imagenet_multicrop


def get_config():
    config = full_run("ibot", "imagenet", batch_size=1024, epochs=800)
    imagenet_multicrop(config)
    config.model.backbone = "vit_s16"
    config.model.backbone_kwargs = dict(interpolate_offset=0.1, drop_path_rate=0.1)
    ibot_vit_recipe(config)
    return config
