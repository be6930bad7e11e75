r"""BYOL, ResNet-50 on ImageNet-1k, the official 1000-epoch recipe (TPU pod).

    python -m jax_ssl.train --config configs/byol_imagenet.py \
        --workdir gs://BUCKET/byol --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: deepmind-research/byol (configs/byol.py, byol_experiment.py): batch 4096, 1000
epochs, LARS with base lr 0.2 per 256 (3.2 at 4096), trust η 0.001, wd 1.5e-6, biases
and BN excluded, 10 warm-up epochs then cosine to 0, EMA target 0.996 → 1 (cosine),
projector and predictor 4096-256, the asymmetric views (bicubic crops (0.08, 1), jitter
(0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2, blur 1.0 / 0.1, solarise 0 / 0.2).
Target: 74.3% linear top-1 (BYOL paper, Table 1, ResNet-50 1×). The lr 4.8 at 4096
sometimes quoted for BYOL is SimCLR's/SwAV's 0.3 per 256, not BYOL's. Computes in
bfloat16, as the official TPU runs.
"""
from jax_ssl.config import resnet_lars


def get_config():
    config = resnet_lars("byol", "imagenet", learning_rate=0.2, weight_decay=1.5e-6,
                         batch_size=4096)
    config.data.recipe = "byol"
    config.byol = dict(base_momentum=0.996, hidden_dim=4096, output_dim=256)
    return config
