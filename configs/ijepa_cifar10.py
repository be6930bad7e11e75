r"""I-JEPA, ViT-S/4 on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/ijepa_cifar10.py \
        --workdir runs/ijepa_cifar10 --config.data.data_dir=DIR

Source: the official recipe (configs/ijepa_imagenet.py, facebookresearch/ijepa
``in1k_vith14_ep300.yaml``) at CIFAR's size: I-JEPA has no CIFAR recipe or result, so
there is no published number to reach. ViT-S with 4-px patches (an 8×8 grid) without CLS
token, a predictor of depth 6 and width 384, batch 512, 600 epochs, the official
schedules and masks with min_keep 4 (on an 8×8 grid a target block holds 9-12
patches). Needs TFDS's cifar10 prepared in DIR.
"""
from jax_ssl.config import full_run, ijepa_recipe


def get_config():
    config = full_run("ijepa", "cifar10", batch_size=512, epochs=600)
    config.model.backbone = "vit_s16"
    ijepa_recipe(config, predictor_depth=6)
    config.model.backbone_kwargs.update(patch_size=4)
    config.ijepa.min_keep = 4
    return config
