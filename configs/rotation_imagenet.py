r"""RotNet (rotation prediction), ResNet-50 on ImageNet-1k (multi-GPU).

    python -m jax_ssl.train --config configs/rotation_imagenet.py \
        --workdir gs://BUCKET/rotation --config.data.data_dir=gs://BUCKET/tensorflow_datasets
    python -m jax_ssl.evaluate --workdir gs://BUCKET/rotation --per_layer

Source: gidariss/FeatureLearningRotNet and VISSL's ``rotnet`` configs: every image in its
four rotations in the batch (256 images, so 1024 through the network), a Linear
classifier on the pooled ResNet-50 features (VISSL), random resized crops and flips,
SGD with Nesterov momentum 0.9, lr 0.1 per 256, wd 5e-4 (RotNet; VISSL: 1e-4), 105
epochs. Not reproduced: the official step schedule (×0.1 at epochs 30, 60, 90, 100);
the trainer's schedule is cosine.
Published: AlexNet RotNet pretraining gives 54.4% mAP on PASCAL VOC 2007 detection
(Gidaris et al. 2018; 56.8% supervised). The representation peaks before the last
layers, so evaluate it with ``--per_layer``.
"""
from jax_ssl.config import full_run


def get_config():
    config = full_run("rotation", "imagenet", batch_size=256, epochs=105)
    config.data.recipe = "mae"  # crop and flip; the rotations are made in the step
    config.data.recipe_kwargs.scale = (0.08, 1.0)
    config.model.backbone = "resnet50"
    config.optimizer = dict(name="sgd", base_learning_rate=0.1, final_learning_rate=0.0,
                            warmup_epochs=0, weight_decay=5e-4, momentum=0.9, nesterov=True)
    config.rotation = dict(hidden_dims=())
    return config
