r"""Barlow Twins, ResNet-50 on ImageNet-1k, the official 1000-epoch recipe (multi-GPU).

    python -m jax_ssl.train --config configs/barlow_twins_imagenet.py \
        --workdir gs://BUCKET/barlow_twins \
        --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/barlowtwins main.py defaults: batch 2048, 1000 epochs, LARS
(η 0.001, no decay or adaptation for biases and BN) with lr 0.2 per 256 for the
weights (1.6), 10 warm-up epochs then cosine to 0.001× (0.0016), wd 1e-6 (the code's;
the paper says 1.5e-6), projector 8192-8192-8192, λ 0.0051, BYOL's views (bicubic
crops (0.08, 1), blur 1.0 / 0.1, solarise 0 / 0.2).
Target: 73.5% linear top-1 (barlowtwins README, 1000 epochs, batch 2048; 73.2% in the
paper). Not reproduced: the official lr for biases and BN parameters is 0.0048 per 256
(0.024× the weights'); the trainer has one lr. Computes in bfloat16.
"""
from jax_ssl.config import resnet_lars


def get_config():
    config = resnet_lars("barlow_twins", "imagenet", learning_rate=0.2, weight_decay=1e-6,
                         batch_size=2048, final_learning_rate=0.2 * 2048 / 256 * 1e-3)
    config.data.recipe = "byol"
    config.barlow_twins = dict(projector_sizes=(8192, 8192, 8192), lambd=0.0051)
    return config
