r"""I-JEPA on the bundled digits (CPU, a few minutes on 2 cores).

    python -m jax_ssl.train --config configs/ijepa_digits.py --workdir runs/ijepa_digits

Source: facebookresearch/ijepa src/train.py (multi-block masks: 4 targets of scale
0.15-0.2, aspect 0.75-1.5, a context of scale 0.85-1 minus the targets; smooth-L1 on
the layer-normed target features; EMA 0.996 -> 1 linear; crops of scale 0.3-1, no flip)
on a CPU budget: the CPU ViT without CLS token on 4-px patches (an 8×8 grid), a 2-block
64-d predictor, AdamW with wd 0.04 -> 0.4, ten epochs.
"""
from jax_ssl.config import cpu_config


def get_config():
    return cpu_config("ijepa", "digits")
