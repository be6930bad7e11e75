r"""SimCLR on Fashion-MNIST for 12 epochs: about 20 minutes on 2 CPU cores.

    python -m jax_ssl.train --config configs/simclr_fashion_mnist_long.py \
        --workdir runs/simclr_fashion_mnist_long
    python -m jax_ssl.evaluate --workdir runs/simclr_fashion_mnist_long --per_layer

The demo's recipe and model (simclr_fashion_mnist.py: a 3-block ViT of width 64 on 7×7
patches, crops (0.8, 1), τ 0.1, batches of 128) with ViT's MLP ratio 4 (the demo's is 2,
for speed), trained six times longer: 5,616 steps. Recorded on 2 cores (2026-12-03,
experiments/demo_runs/2026-12-03_simclr_fashion_mnist_long.md; README.md, "Demo"):
kNN 84.8 / 76.3 with all / 1% of the labels (the demo's 2 epochs: 83.2 / 74.0; raw
pixels 85.7 / 73.6); up to 790 images/s, 20 minutes of pretraining.
"""
import pathlib

from jax_ssl.config import from_file


def get_config():
    config = from_file(pathlib.Path(__file__).with_name("simclr_fashion_mnist.py"))
    # ViT's MLP ratio 4, as measured; the demo trades it for speed (ratio 2).
    config.model.backbone_kwargs.mlp_ratio = 4.0
    config.epochs = 12.0
    config.log_every = 200
    config.checkpoint.every_steps = 1000
    return config
