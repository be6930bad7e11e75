r"""SimCLR v2-style ResNet-50 on ImageNet-1k, the official recipe (TPU pod).

    python -m jax_ssl.train --config configs/simclr_imagenet.py --workdir gs://BUCKET/simclr \
        --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: google-research/simclr (tf2 ``run.py`` flags for ImageNet): batch 4096, LARS with
lr 0.3·bs/256 (4.8), wd 1e-6, warm-up 10 epochs then cosine, τ 0.1, 3-layer projector
2048-2048-128 with BN, colour strength 1.0 and blur p 0.5 at 224 px, 1000 epochs →
71.7% linear top-1 (SimCLR v2 paper, ResNet-50 1×, Table 1 of v1 reports 69.3% at 1000
epochs with the 2-layer head).
"""
from jax_ssl.config import base


def get_config():
    config = base("simclr", "imagenet")
    config.batch_size = 4096
    config.epochs = 1000
    config.dtype = "bfloat16"
    config.data.recipe_kwargs.update(dict(scale=(0.08, 1.0), blur=0.5, strength=1.0))
    config.model.backbone = "resnet50"
    config.simclr = dict(temperature=0.1, projector_hidden_dim=2048, projector_dim=128,
                         projector_layers=3)
    config.optimizer = dict(name="lars", base_learning_rate=0.3, final_learning_rate=0.0,
                            warmup_epochs=10, weight_decay=1e-6, momentum=0.9)
    config.checkpoint.every_steps = 5000
    return config
