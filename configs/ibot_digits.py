r"""iBOT on the bundled digits (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/ibot_digits.py --workdir runs/ibot_digits

Source: bytedance/ibot main_ibot.py (DINO's CLS loss plus the masked patch loss, λ₁ = λ₂
= 1; each global crop masked with probability ½ at a ratio in (0.1, 0.5), block-wise;
patch center 0.9; shared head, as the ViT recipes) on DINO's CPU settings: the CPU ViT,
a head of 512-512-128 → 1024, 2 global + 4 local crops without blur, AdamW with wd
0.04 → 0.4 and per-tensor clipping 3.0, no frozen last layer.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("ibot", "digits")
