"""SimCLR on the bundled digits (CPU, about a minute): a smoke run of the whole trainer.

    python -m jax_ssl.train --config configs/simclr_digits.py --workdir /tmp/simclr_digits

Source: google-research/simclr's recipe (NT-Xent, LARS, 2-layer-deep projector) scaled
down to 1,498 images of 32×32: a ViT-Ti/4 of 4 blocks, no blur (as SimCLR on CIFAR).
"""
from jax_ssl.config import base


def get_config():
    config = base("simclr", "digits")
    config.batch_size = 128
    config.epochs = 10
    config.log_every = 10
    config.data.recipe_kwargs.update(dict(scale=(0.2, 1.0), blur=0.0, strength=0.5))
    config.model.backbone = "vit_ti16"
    config.model.backbone_kwargs = dict(patch_size=4, image_size=32, depth=4)
    config.simclr = dict(temperature=0.2, projector_hidden_dim=512, projector_dim=128,
                         projector_layers=2)
    config.optimizer = dict(name="adamw", base_learning_rate=1e-3, final_learning_rate=0.0,
                            warmup_epochs=1, weight_decay=0.05, b1=0.9, b2=0.999)
    config.checkpoint.every_steps = 50
    return config
