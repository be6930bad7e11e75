r"""Relative patch position (context prediction), ResNet-50 on ImageNet-1k (multi-GPU).

    python -m jax_ssl.train --config configs/relative_position_imagenet.py \
        --workdir gs://BUCKET/relpos --config.data.data_dir=gs://BUCKET/tensorflow_datasets
    python -m jax_ssl.evaluate --workdir gs://BUCKET/relpos --per_layer

Source: Doersch, Gupta & Efros 2015: 96-px patches on a 3×3 grid with 48-px gaps and up
to 7 px of jitter, the centre patch and one of its 8 neighbours, a late-fusion siamese
network (fc6 per patch, concatenation, fc7 4096, 8 classes); greyscale for a third of
the pairs against chromatic aberration (the paper: colour projection or dropping).
The images are ImageNet's at their stored size (the paper resizes to 150k–450k pixels).
ResNet-50 with SGD momentum 0.9, lr 0.1 per 256, wd 1e-4, 105 epochs (as VISSL trains its
other pretext tasks). Published: VGG-style pretraining gives 46.6% mAP on PASCAL VOC
2007 detection with AlexNet-sized fast R-CNN (as tabulated by Gidaris et al. 2018).
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("relative_position", "imagenet", batch_size=256, epochs=105)
    config.data.recipe = "relative_position"
    config.data.recipe_kwargs = dict(patch=96, gap=48, jitter=7, grey=0.33,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.model.backbone = "resnet50"
    config.optimizer = dict(name="sgd", base_learning_rate=0.1, final_learning_rate=0.0,
                            warmup_epochs=0, weight_decay=1e-4, momentum=0.9)
    config.relative_position = dict(crop_dim=4096, hidden_dims=(4096,))
    return config
