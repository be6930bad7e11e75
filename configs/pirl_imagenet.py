r"""PIRL (jigsaw), ResNet-50 on ImageNet-1k: VISSL's 800-epoch recipe (4 nodes × 8 GPUs).

    python -m jax_ssl.train --config configs/pirl_imagenet.py \
        --workdir gs://BUCKET/pirl --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/vissl configs/config/pretrain/pirl/pirl_jigsaw_4node_resnet.yaml:
batch 1024 (32 per GPU), image crops (0.08, 1) at 224 with colour jitter (0.4, 0.4, 0.4,
0.2), greyscale 0.2, flip; jigsaw crops (0.6, 1) at 255 → 9 tiles of 64; heads: a Linear
2048→128 for the image, a Linear 2048→128 per tile and 1152→128 over their
concatenation; NCE at τ 0.07 with 32000 negatives per image, λ 0.5, a memory bank of
all 1.28 M images (128-d, momentum 0.5; sharded over the devices here); SGD momentum
0.9, lr 0.03 per 256 (0.12) with cosine to 0.00012, wd 1e-4, 800 epochs. The bank's rows
are TFDS's record ids of the train split.
Published: 63.6% ImageNet linear top-1 (Misra & van der Maaten 2020, ResNet-50, 800
epochs). Not reproduced: VISSL's "ImgPilRandomPhotometric" step; no weight decay on BN
and biases is the trainer's rule for every method.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("pirl", "imagenet", batch_size=1024, epochs=800)
    config.data.recipe = "pirl"
    config.data.recipe_kwargs = dict(size=224, scale=(0.08, 1.0), jigsaw_size=255,
                                     jigsaw_scale=(0.6, 1.0), tile=64,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.model.backbone = "resnet50"
    config.optimizer = dict(name="sgd", base_learning_rate=0.03, final_learning_rate=0.00012,
                            warmup_epochs=0, weight_decay=1e-4, momentum=0.9)
    config.pirl = dict(output_dim=128, crop_dim=128, temperature=0.07, lambd=0.5,
                       num_negatives=32000, momentum=0.5)
    return config
