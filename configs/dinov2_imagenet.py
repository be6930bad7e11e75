r"""DINOv2, ViT-L/16 on ImageNet-1k, the ``vitl16_short`` recipe (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/dinov2_imagenet.py \
        --workdir gs://BUCKET/dinov2 --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/dinov2 ``configs/train/vitl16_short.yaml`` on
``ssl_default_config.yaml`` and its README (4 nodes × 8 GPUs × 64 images = batch 2048):
100 DINOv2 epochs of 1250 iterations (125,000 steps, about 200 ImageNet epochs), AdamW
lr 0.004 × √(2048/1024) after 10 of its epochs, cosine to 1e-6, wd 0.04 → 0.4, clipping
3.0 per part, layer decay 0.9 with the patch embedding ×0.2; ViT-L/16 with LayerScale
1e-5 and uniform drop path 0.3; one head 2048-2048-256 → 65536 for CLS and masked
patches; teacher 0.992 → 1, τ 0.04 → 0.07 over 30 of its epochs, running centers 0.9;
KoLeo 0.1; half the global crops masked at stratified ratios in (0.1, 0.5); 2×224
(scale 0.32–1) + 8×96 (0.05–0.32) crops of DINO's augmentation. The released ViT-L/14
recipe (ImageNet-22k) differs in: patch 14, 131072 prototypes, a separate iBOT head,
``--config.dinov2.centering=sinkhorn_knopp``, SwiGLU, layer decay 1.0.
Target: k-NN 81.6%, linear 82.9% top-1 (dinov2 README, ViT-L/16 on ImageNet-1k).
Computes in bfloat16 (losses and softmaxes stay float32).
"""
from jax_ssl.config import dinov2_vit_recipe, full_run, imagenet_multicrop

BATCH_SIZE = 2048
IMAGENET_TRAIN_IMAGES = 1_281_167
# DINOv2's "epoch" is OFFICIAL_EPOCH_LENGTH = 1250 iterations, in ImageNet epochs
OFFICIAL_EPOCH = 1250 * BATCH_SIZE / IMAGENET_TRAIN_IMAGES


def get_config():
    config = full_run("dinov2", "imagenet", batch_size=BATCH_SIZE, epochs=100 * OFFICIAL_EPOCH)
    config.total_steps = 100 * 1250
    imagenet_multicrop(config)
    config.data.recipe_kwargs.update(num_local=8, global_scale=(0.32, 1.0),
                                     local_scale=(0.05, 0.32))
    config.model.backbone = "vit_l16"
    config.model.backbone_kwargs = dict(layer_scale=1e-5, drop_path_rate=0.3,
                                        drop_path_uniform=True, interpolate_offset=0.1)
    dinov2_vit_recipe(config, official_epoch=OFFICIAL_EPOCH)
    return config
