r"""Jigsaw puzzles, ResNet-50 on ImageNet-1k (multi-GPU).

    python -m jax_ssl.train --config configs/jigsaw_imagenet.py \
        --workdir gs://BUCKET/jigsaw --config.data.data_dir=gs://BUCKET/tensorflow_datasets
    python -m jax_ssl.evaluate --workdir gs://BUCKET/jigsaw --per_layer

Source: Noroozi & Favaro 2016 (255-px crops → 85-px cells → random 64-px tiles, per-tile
normalisation, colour-channel jitter, 30% greyscale, 1000 permutations of maximal
Hamming distance) with VISSL's ResNet-50 jigsaw head (the 9 pooled tile features
concatenated, one Linear to the permutations) and its optimizer (SGD momentum 0.9, lr
0.1 per 256, wd 1e-4, batch 256, 105 epochs; cosine here instead of VISSL's steps).
Published: the AlexNet context-free network reaches 67.6% mAP on PASCAL VOC 2007
classification and 53.2% on detection (Noroozi & Favaro 2016). Its last layers
specialise in the puzzle: evaluate with ``--per_layer``.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("jigsaw", "imagenet", batch_size=256, epochs=105)
    config.data.recipe = "jigsaw"
    config.data.recipe_kwargs = dict(size=255, tile=64, num_permutations=1000,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.model.backbone = "resnet50"
    config.optimizer = dict(name="sgd", base_learning_rate=0.1, final_learning_rate=0.0,
                            warmup_epochs=0, weight_decay=1e-4, momentum=0.9)
    config.jigsaw = dict(num_permutations=1000, crop_dim=0, hidden_dims=())
    return config
