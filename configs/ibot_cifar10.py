r"""iBOT, ViT-S/4 on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/ibot_cifar10.py \
        --workdir runs/ibot_cifar10 --config.data.data_dir=DIR

Source: the ImageNet ViT-S/16 recipe (configs/ibot_imagenet.py, bytedance/ibot README)
at CIFAR's size: iBOT has no official CIFAR pre-training recipe or result (the paper
fine-tunes on CIFAR only), so there is no published number to reach. ViT-S with 4-px
patches (an 8×8 grid, where the block masks' minimum block is 2×2 = 4 patches), batch
512, 800 epochs, AdamW lr 5e-4 per 256, wd 0.04 → 0.4, head → 8192 shared,
2×32 px (scale 0.25–1) + 6×16 px (0.05–0.25) crops of DINO's augmentation without
blur. Needs TFDS's cifar10 prepared in DIR.
"""
from jax_ssl.config import full_run, ibot_vit_recipe, small_images_multicrop


def get_config():
    config = full_run("ibot", "cifar10", batch_size=512, epochs=800)
    small_images_multicrop(config, style="dino", num_local=6)
    config.data.recipe_kwargs.update(global_scale=(0.25, 1.0), local_scale=(0.05, 0.25))
    config.model.backbone = "vit_s16"
    config.model.backbone_kwargs = dict(patch_size=4, image_size=32, drop_path_rate=0.1)
    ibot_vit_recipe(config)
    return config
