r"""VICReg, ResNet-50 on ImageNet-1k, the official 1000-epoch recipe (multi-GPU).

    python -m jax_ssl.train --config configs/vicreg_imagenet.py \
        --workdir gs://BUCKET/vicreg --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/vicreg README (``--epochs 1000 --batch-size 2048 --base-lr
0.2``) and main_vicreg.py: LARS (η 0.001, no decay or adaptation for biases and BN),
lr 0.2 per 256 (1.6), 10 warm-up epochs then cosine to 0.001× (0.0016), wd 1e-6,
expander 8192-8192-8192, coefficients 25 / 25 / 1, BYOL's views (bicubic crops
(0.08, 1), blur 1.0 / 0.1, solarise 0 / 0.2).
Target: 73.2% linear top-1 (vicreg README, ResNet-50). Computes in bfloat16.
"""
from jax_ssl.config import resnet_lars


def get_config():
    config = resnet_lars("vicreg", "imagenet", learning_rate=0.2, weight_decay=1e-6,
                         batch_size=2048, final_learning_rate=0.2 * 2048 / 256 * 1e-3)
    config.data.recipe = "byol"
    config.vicreg = dict(projector_sizes=(8192, 8192, 8192), sim_coeff=25.0, std_coeff=25.0,
                         cov_coeff=1.0)
    return config
