r"""DINOv2 on the bundled digits (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/dinov2_digits.py --workdir runs/dinov2_digits

Source: facebookresearch/dinov2 ssl_meta_arch.py and ssl_default_config.yaml (DINO's CLS
loss + iBOT's masked-patch loss through the shared head + KoLeo 0.1 on each global
crop's CLS; half of the global crops masked at stratified ratios in (0.1, 0.5),
block-wise; running centers 0.9; teacher 0.992 → 1) on DINO's CPU settings: the CPU ViT,
heads of 512-512-128 → 1024, 2 global + 4 local crops without blur, AdamW with wd
0.04 → 0.4 and clipping 3.0 per part (backbone, head), no frozen last layer.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("dinov2", "digits")
