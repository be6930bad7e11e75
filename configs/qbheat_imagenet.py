r"""QB-Heat, ViT-B/16 on ImageNet-1k (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/qbheat_imagenet.py \
        --workdir gs://BUCKET/qbheat --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: Chen et al. 2022 (arXiv 2211.13228): the encoder sees the top-left 7×7 of the
14×14 patches at 224 px, the heat equation's linear steps extrapolate the other three
quarters, a light decoder reconstructs their pixels. The paper (no code released)
reports only a Mobile-Former (5.8M parameters): linear probing on par with MoCo-v2,
65.6% top-1 with a transformer block before the linear classifier (MoCo-v2: 52.9%);
there is no published ViT-B/16 number to reach, and its training recipe is not stated:
this config takes MAE's (batch 4096, 800 epochs, see ``qbheat_recipe``). The CNN
version: configs/qbheat_resnet_imagenet.py. Computes in bfloat16 (the loss stays
float32).
"""
from jax_ssl.config import full_run, qbheat_recipe


def get_config():
    config = full_run("qbheat", "imagenet", batch_size=4096, epochs=800)
    config.model.backbone = "vit_b16"
    config.model.backbone_kwargs = dict(pos_embed="sincos")
    qbheat_recipe(config)
    return config
