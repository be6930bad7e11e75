"""jax_ssl.losses: pure, jit-able self-supervised losses that match the official code.

Every loss computes in float32 whatever its inputs' dtype and takes ``axis_name``: with a
mesh or pmap axis name it reduces over that axis and equals the loss of the global batch
on one device; with None it is the single-device loss.
"""
from jax_ssl.losses.clustering import sinkhorn, swav_loss
from jax_ssl.losses.contrastive import (
    info_nce,
    memory_bank_logits,
    memory_bank_update,
    moco_v3_loss,
    nce_log_normalizer,
    nce_loss,
    pirl_loss,
)
from jax_ssl.losses.distillation import (
    centered_teacher_probs,
    dino_cross_entropy,
    dino_loss,
    dino_teacher_temperature,
    ibot_gathered_patch_loss,
    ibot_patch_center,
    ibot_patch_loss,
    koleo_loss,
    update_center,
)
from jax_ssl.losses.masked import ijepa_loss, mae_loss, patchify, unpatchify
from jax_ssl.losses.noncontrastive import barlow_twins_loss, byol_loss, vicreg_loss
from jax_ssl.losses.pretext import (
    RELATIVE_POSITION_OFFSETS,
    classification_loss,
    jigsaw_loss,
    jigsaw_tiles,
    max_hamming_permutations,
    relative_position_loss,
    rotation_batch,
    rotation_loss,
)

__all__ = [
    "RELATIVE_POSITION_OFFSETS", "barlow_twins_loss", "byol_loss", "centered_teacher_probs",
    "classification_loss", "dino_cross_entropy", "dino_loss", "dino_teacher_temperature",
    "ibot_gathered_patch_loss", "ibot_patch_center", "ibot_patch_loss", "ijepa_loss",
    "info_nce", "jigsaw_loss", "jigsaw_tiles", "koleo_loss", "mae_loss",
    "max_hamming_permutations", "memory_bank_logits", "memory_bank_update",
    "moco_v3_loss", "nce_log_normalizer", "nce_loss", "patchify", "pirl_loss",
    "relative_position_loss", "rotation_batch", "rotation_loss", "sinkhorn", "swav_loss",
    "unpatchify", "update_center", "vicreg_loss",
]
