r"""QB-Heat, ResNet-50 on ImageNet-1k at 256 px (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/qbheat_resnet_imagenet.py \
        --workdir gs://BUCKET/qbheat_r50 --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: Chen et al. 2022 (arXiv 2211.13228), on the CNN the paper stresses: ResNet-50
runs on the 128-px top-left quarter crop alone; its 4×4 stride-32 map is extrapolated to
the 8×8 cells (32 px) of the 256-px crop (at 224 px the quarter's 3.5 cells would not
tile). No ResNet number is published and the paper's recipe is not stated: MAE's
(``qbheat_recipe``), batch 4096, 800 epochs. Evaluation crops at 256 too.
"""
from jax_ssl.config import full_run, qbheat_recipe


def get_config():
    config = full_run("qbheat", "imagenet", batch_size=4096, epochs=800)
    config.data.crop_size = 256
    config.data.eval_resize_size = 292
    config.model.backbone = "resnet50"
    config.model.backbone_kwargs = {}
    qbheat_recipe(config)
    return config
