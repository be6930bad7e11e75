"""SimCLR on Fashion-MNIST, the `make demo` run: one epoch, about 2 minutes on 2 cores.

    python -m jax_ssl.train --config configs/simclr_fashion_mnist.py --workdir runs/demo
    python -m jax_ssl.evaluate --workdir runs/demo

Source: google-research/simclr's objective (NT-Xent, 2-layer projector) with the
optimizer and augmentation scaled for a short CPU run on 28×28 greyscale images:
crops of scale (0.2, 1), flips, brightness/contrast jitter at half strength, no blur.
The backbone is a 3-block ViT of width 128 on 7×7 patches (16 tokens), the size that
trains at about 500 images/s here. Measured results: README.md ("Demo").
"""
from jax_ssl.config import base


def get_config():
    config = base("simclr", "fashion_mnist")
    config.batch_size = 256
    config.epochs = 1.0
    config.log_every = 50
    config.data.recipe_kwargs.update(dict(scale=(0.2, 1.0), blur=0.0, strength=0.5))
    config.model.backbone = "vit_ti16"
    config.model.backbone_kwargs = dict(patch_size=7, image_size=28, embed_dim=128, depth=3,
                                        num_heads=4)
    config.simclr = dict(temperature=0.2, projector_hidden_dim=512, projector_dim=128,
                         projector_layers=2)
    config.optimizer = dict(name="adamw", base_learning_rate=1e-3, final_learning_rate=0.0,
                            warmup_epochs=0.1, weight_decay=1e-4, b1=0.9, b2=0.999)
    config.checkpoint.every_steps = 100
    return config
