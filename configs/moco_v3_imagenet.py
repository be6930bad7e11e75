r"""MoCo v3, ResNet-50 on ImageNet-1k, the official 1000-epoch recipe (TPU pod / multi-GPU).

    python -m jax_ssl.train --config configs/moco_v3_imagenet.py \
        --workdir gs://BUCKET/moco_v3 --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/moco-v3 CONFIG.md ("ResNet-50, 1000-epoch pre-training") on
main_moco.py's defaults: batch 4096, LARS lr 0.3 per 256 (4.8), wd 1.5e-6, 10 warm-up
epochs then cosine to 0, τ 1.0, momentum 0.996 → 1 (``--moco-m-cos``), 2-layer projector
4096-256 and predictor 4096-256, two 224-px views with BYOL's augmentation (blur 1.0 /
0.1, solarise 0 / 0.2) at crop scale (0.2, 1) (``--crop-min=.2``), bilinear.
Target: 74.6% linear top-1 (moco-v3 README, "ResNet-50, linear classification", 1000
epochs). Computes in bfloat16 (the official: PyTorch AMP).
"""
from jax_ssl.config import resnet_lars


def get_config():
    config = resnet_lars("moco_v3", "imagenet", learning_rate=0.3, weight_decay=1.5e-6,
                         batch_size=4096)
    config.data.recipe = "byol"
    config.data.recipe_kwargs.update(dict(scale=(0.2, 1.0), interpolation="bilinear"))
    config.moco_v3 = dict(temperature=1.0, base_momentum=0.996, projector_layers=2,
                          hidden_dim=4096, output_dim=256)
    return config
