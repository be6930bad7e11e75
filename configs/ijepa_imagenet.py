r"""I-JEPA, ViT-H/14 on ImageNet-1k, the official 300-epoch recipe (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/ijepa_imagenet.py \
        --workdir gs://BUCKET/ijepa --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/ijepa ``configs/in1k_vith14_ep300.yaml`` (16 GPUs × 128 = batch
2048): 300 epochs, AdamW lr 1e-3 (absolute, for 2048) after 40 warm-up epochs from 2e-4,
cosine to 1e-6, wd 0.04 → 0.4, EMA 0.996 → 1 (linear); ViT-H/14 at 224 without CLS
token, sin-cos position embedding; predictor 12 blocks of width 384 (16 heads, the
encoder's); 4 target blocks of scale 0.15–0.2, aspect 0.75–1.5, a context block of
scale 0.85–1 minus the targets, min_keep 10; RandomResizedCrop (0.3, 1), no flip.
Target: linear probe 79.3% top-1 (the paper's Table 1, ViT-H/14 300 epochs, on the
target encoder's average-pooled tokens; the repository states no number). ViT-B/16:
configs/ijepa_imagenet_vitb16.py. Computes in bfloat16 (the loss stays float32).
Not reproduced: the official re-draws every Linear and the patch embedding from
N(0, 0.02) (here the ViT's xavier initialisation) and decays the mask token's weight;
its crops are bilinear (here bicubic).
"""
from jax_ssl.config import full_run, ijepa_recipe


def get_config():
    config = full_run("ijepa", "imagenet", batch_size=2048, epochs=300)
    config.model.backbone = "vit_h14"
    ijepa_recipe(config, predictor_depth=12)
    return config
