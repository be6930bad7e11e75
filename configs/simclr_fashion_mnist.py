"""SimCLR on Fashion-MNIST, the `make demo` run (CPU, about 3 minutes on 2 cores).

    python -m jax_ssl.train --config configs/simclr_fashion_mnist.py --workdir runs/demo
    python -m jax_ssl.evaluate --workdir runs/demo

Source: google-research/simclr's objective (NT-Xent, 2-layer projector) with the
optimizer and augmentation scaled for a short CPU run on 28×28 greyscale images:
crops of scale (0.2, 1), flips, brightness/contrast jitter at half strength, no blur.
"""
from jax_ssl.config import base


def get_config():
    config = base("simclr", "fashion_mnist")
    config.batch_size = 256
    config.epochs = 1
    config.log_every = 20
    config.data.recipe_kwargs.update(dict(scale=(0.2, 1.0), blur=0.0, strength=0.5))
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(width=32)
    config.simclr = dict(temperature=0.2, projector_hidden_dim=512, projector_dim=128,
                         projector_layers=2)
    config.optimizer = dict(name="adamw", base_learning_rate=1e-3, final_learning_rate=0.0,
                            warmup_epochs=0.1, weight_decay=1e-4, b1=0.9, b2=0.999)
    config.checkpoint.every_steps = 100
    return config
