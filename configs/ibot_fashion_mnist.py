r"""iBOT on Fashion-MNIST (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/ibot_fashion_mnist.py \
        --workdir runs/ibot_fashion_mnist
    python -m jax_ssl.evaluate --workdir runs/ibot_fashion_mnist

Source: bytedance/ibot main_ibot.py (DINO's CLS loss plus the masked patch loss, λ₁ = λ₂
= 1; each global crop masked with probability ½ at a ratio in (0.1, 0.5), block-wise on
the 4×4 grid of 7-px patches; patch center 0.9; shared head, as the ViT recipes) on
DINO's CPU settings (configs/dino_fashion_mnist.py): the CPU ViT, a head of 512-512-128
→ 1024, 2 global + 4 local crops without blur, one epoch of batches of 256.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("ibot", "fashion_mnist")
