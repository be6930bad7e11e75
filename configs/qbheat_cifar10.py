r"""QB-Heat, ResNet-18 (CIFAR stem) on CIFAR-10, one GPU.

    python -m jax_ssl.train --config configs/qbheat_cifar10.py \
        --workdir runs/qbheat_cifar10 --config.data.data_dir=DIR

Source: Chen et al. 2022 (arXiv 2211.13228) on a CNN: the ResNet-18 with the CIFAR stem
(stride 8) sees the 16-px top-left quarter, whose 2×2 map is extrapolated to the 4×4
cells (8 px) of the image. No CIFAR recipe or number is published: MAE's recipe
(``qbheat_recipe``), batch 512, 800 epochs, a decoder of 4 blocks of width 256. Needs
TFDS's cifar10 prepared in DIR.
"""
from jax_ssl.config import full_run, qbheat_recipe


def get_config():
    config = full_run("qbheat", "cifar10", batch_size=512, epochs=800)
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(cifar_stem=True)
    qbheat_recipe(config)
    config.qbheat.update(decoder_dim=256, decoder_depth=4, decoder_heads=8)
    return config
