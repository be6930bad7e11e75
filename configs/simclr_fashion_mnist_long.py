r"""SimCLR on Fashion-MNIST for about 30 minutes on 2 CPU cores (30 epochs).

    python -m jax_ssl.train --config configs/simclr_fashion_mnist_long.py \
        --workdir runs/simclr_fashion_mnist_long
    python -m jax_ssl.evaluate --workdir runs/simclr_fashion_mnist_long

The demo's recipe and backbone (simclr_fashion_mnist.py) trained 15 times longer, with a
one-epoch warm-up. Measured results: README.md ("Demo").
"""
import importlib.util
import pathlib


def get_config():
    path = pathlib.Path(__file__).with_name("simclr_fashion_mnist.py")
    spec = importlib.util.spec_from_file_location("simclr_fashion_mnist", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    config = demo.get_config()
    config.epochs *= 15
    config.optimizer.warmup_epochs = 1.0
    config.checkpoint.every_steps = 500
    return config
