r"""QB-Heat with a ResNet on Fashion-MNIST (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/qbheat_resnet_fashion_mnist.py \
        --workdir runs/qbheat_resnet_fashion_mnist
    python -m jax_ssl.evaluate --workdir runs/qbheat_resnet_fashion_mnist

QB-Heat on a CNN, the case the paper stresses: the ResNet-18 of width 16 with the CIFAR
stem (the pretext methods' CPU backbone) runs on the 14-px top-left quarter crop alone
(no masking inside the network); its 2×2 output map (stride 8) is extrapolated to 4×4
cells of 7 px and decoded to pixels as in configs/qbheat_fashion_mnist.py.
"""
from jax_ssl.config import CPU_RESNET, cpu_config


def get_config():
    config = cpu_config("qbheat", "fashion_mnist")
    config.model.backbone = "resnet18"
    config.model.backbone_kwargs = dict(CPU_RESNET)
    return config
