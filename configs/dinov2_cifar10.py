r"""DINOv2, ViT-S/4 on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/dinov2_cifar10.py \
        --workdir runs/dinov2_cifar10 --config.data.data_dir=DIR

Source: DINOv2's default recipe (configs/dinov2_imagenet.py, facebookresearch/dinov2
``ssl_default_config.yaml``) at CIFAR's size: DINOv2 has no CIFAR pre-training recipe or
result, so there is no published number to reach. ViT-S with 4-px patches (an 8×8
grid) and LayerScale 1e-5, batch 512, 800 epochs (an epoch here is one pass over
CIFAR-10, not DINOv2's 1250 iterations), AdamW lr 0.004 × √(512/1024), layer decay 0.9,
wd 0.04 → 0.4, one head → 65536, KoLeo 0.1, 2×32 px (scale 0.32–1) + 8×16 px
(0.05–0.32) crops of DINO's augmentation without blur. Needs TFDS's cifar10 prepared in
DIR.
"""
from jax_ssl.config import dinov2_vit_recipe, full_run, small_images_multicrop


def get_config():
    config = full_run("dinov2", "cifar10", batch_size=512, epochs=800)
    small_images_multicrop(config, style="dino", num_local=8)
    config.data.recipe_kwargs.update(global_scale=(0.32, 1.0), local_scale=(0.05, 0.32))
    config.model.backbone = "vit_s16"
    config.model.backbone_kwargs = dict(patch_size=4, image_size=32, layer_scale=1e-5,
                                        drop_path_rate=0.1)
    dinov2_vit_recipe(config, official_epoch=1.0)
    return config
