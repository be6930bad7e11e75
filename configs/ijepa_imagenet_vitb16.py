r"""I-JEPA, ViT-B/16 on ImageNet-1k (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/ijepa_imagenet_vitb16.py \
        --workdir gs://BUCKET/ijepa_b16 --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: the official ViT-H/14 recipe (configs/ijepa_imagenet.py,
facebookresearch/ijepa ``configs/in1k_vith14_ep300.yaml``) with the ViT-B/16 settings of
the paper: 600 epochs, a predictor of depth 6 (the code's default ``pred_depth``) and
width 384 with 12 heads. The repository has no ViT-B/16 config; the paper's Table 1
gives 72.9% linear-probe top-1 for ViT-B/16 after 600 epochs (not checked against the
paper's text here: quoted from its table as commonly cited).
"""
from jax_ssl.config import full_run, ijepa_recipe


def get_config():
    config = full_run("ijepa", "imagenet", batch_size=2048, epochs=600)
    config.model.backbone = "vit_b16"
    ijepa_recipe(config, predictor_depth=6)
    return config
