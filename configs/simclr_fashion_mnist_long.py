r"""SimCLR on Fashion-MNIST for about 30 minutes on 2 CPU cores (15 epochs).

    python -m jax_ssl.train --config configs/simclr_fashion_mnist_long.py \
        --workdir runs/simclr_fashion_mnist_long
    python -m jax_ssl.evaluate --workdir runs/simclr_fashion_mnist_long

The demo's earlier recipe (a 3-block ViT of width 128, 4 heads, on 7×7 patches; crops
(0.2, 1), τ 0.2, batches of 256) trained for 15 epochs with a one-epoch warm-up: the
run whose results README.md ("Demo") reports. The current demo
(simclr_fashion_mnist.py) is a narrower model with weaker crops tuned for two epochs.
"""
from jax_ssl.config import base, cpu_vit


def get_config():
    config = base("simclr", "fashion_mnist")
    config.batch_size = 256
    config.epochs = 15.0
    config.log_every = 50
    config.data.recipe_kwargs.update(dict(scale=(0.2, 1.0), blur=0.0, strength=0.5))
    cpu_vit(config, patch_size=7)
    config.simclr = dict(temperature=0.2, projector_hidden_dim=512, projector_dim=128,
                         projector_layers=2)
    config.optimizer = dict(name="adamw", base_learning_rate=1e-3, final_learning_rate=0.0,
                            warmup_epochs=1.0, weight_decay=1e-4, b1=0.9, b2=0.999)
    config.checkpoint.every_steps = 500
    return config
