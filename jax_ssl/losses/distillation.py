"""Self-distillation losses: DINO, iBOT's masked-patch loss, DINOv2's KoLeo regulariser."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jax_ssl.losses._common import (
    check_positive,
    check_rank,
    check_same_shape,
    device_index,
    f32,
    gather_batch,
    global_mean,
    global_sum,
    l2_normalize,
    num_devices,
)


def centered_teacher_probs(teacher_logits, center, *, temperature):
    """softmax((teacher − center)/τ_t) in float32, without gradient (DINO/iBOT teacher).

    Args: teacher_logits [..., K]; center [K] (broadcasts); temperature τ_t.
    """
    check_positive("temperature", temperature)
    logits = lax.stop_gradient(f32(teacher_logits) - f32(center))
    return jax.nn.softmax(logits / temperature, axis=-1)


def dino_teacher_temperature(epoch, *, warmup_teacher_temp: float = 0.04,
                             teacher_temp: float = 0.04, warmup_epochs: int = 0):
    """DINO's per-epoch teacher temperature: linear warm-up, then constant.

    ``np.linspace(warmup_teacher_temp, teacher_temp, warmup_epochs)`` for the first
    ``warmup_epochs`` epochs (both ends included), ``teacher_temp`` after (``DINOLoss``
    schedule; the ViT recipes warm 0.04 → 0.07 over 30 epochs). ``epoch`` may be traced.
    """
    epoch = jnp.asarray(epoch, jnp.float32)
    if warmup_epochs <= 0:
        return jnp.float32(teacher_temp)
    fraction = epoch / max(warmup_epochs - 1, 1)
    warm = warmup_teacher_temp + (teacher_temp - warmup_teacher_temp) * fraction
    return jnp.where(epoch < warmup_epochs, warm, teacher_temp).astype(jnp.float32)


def dino_loss(student, teacher, center, *, student_temp: float = 0.1,
              teacher_temp=0.04, center_momentum: float = 0.9, axis_name=None):
    """DINO cross-entropy between teacher and student crops (facebookresearch/dino ``DINOLoss``).

    Args:
      student: [V, B, K] student head outputs for every crop, the teacher's crops first.
      teacher: [T, B, K] teacher head outputs for the T global crops (T = 2).
      center: [K] running center of the teacher outputs.
      student_temp: τ_s = 0.1. teacher_temp: τ_t (0.04 default, see
        ``dino_teacher_temperature``); may be traced.
      center_momentum: m = 0.9.
    Returns:
      (loss, new_center): loss averages −Σ_k t·log s over every (teacher crop i, student
      crop v ≠ i) pair, each a global-batch mean; new_center = m·center + (1−m)·mean of the
      raw teacher outputs over both crops and the global batch.
    """
    check_rank("teacher", teacher, 3, "[T, B, K]")
    num_teacher, b, k = teacher.shape
    if jnp.shape(center) not in ((k,), (1, k)):
        raise ValueError(f"center must have shape [K]=({k},), got {jnp.shape(center)}.")
    center = f32(center).reshape(-1)
    teacher_probs = centered_teacher_probs(teacher, center, temperature=teacher_temp)
    loss = dino_cross_entropy(student, teacher_probs, student_temp=student_temp,
                              axis_name=axis_name)
    new_center = update_center(teacher.reshape(-1, k), center,
                               center_momentum=center_momentum, axis_name=axis_name)
    return loss, new_center


def update_center(teacher_logits, center, *, center_momentum: float = 0.9, valid=None,
                  axis_name=None):
    """m·center + (1−m)·mean of the teacher's logits over the rows of the global batch.

    Args:
      teacher_logits: [N, K] rows (DINO: both global crops' CLS outputs; iBOT: every
        patch token; DINOv2: the masked patch tokens).
      center: [K].
      valid: optional [N] bool: only these rows count (a padded buffer's real rows).
    Returns: new center [K] float32.
    """
    check_rank("teacher_logits", teacher_logits, 2, "[N, K]")
    logits = lax.stop_gradient(f32(teacher_logits))
    if valid is None:
        count = logits.shape[0] * num_devices(axis_name)
    else:
        logits = jnp.where(jnp.asarray(valid, bool)[:, None], logits, 0.0)
        count = jnp.maximum(global_sum(jnp.sum(valid), axis_name), 1)
    batch_center = global_sum(jnp.sum(logits, axis=0), axis_name) / count
    return f32(center).reshape(-1) * center_momentum + batch_center * (1 - center_momentum)


def dino_cross_entropy(student, teacher_probs, *, student_temp: float = 0.1, axis_name=None):
    """DINO's loss given the teacher's probabilities (``centered_teacher_probs``, or
    DINOv2's ``sinkhorn`` codes).

    Args:
      student: [V, B, K] student head outputs for every crop, the teacher's crops first.
      teacher_probs: [T, B, K] teacher probabilities of the T global crops, constants.
      student_temp: τ_s = 0.1.
    Returns:
      Scalar: −Σ_k t·log_softmax(s/τ_s) averaged over every (teacher crop i, student crop
      v ≠ i) pair, each a global-batch mean.
    """
    check_rank("student", student, 3, "[V, B, K]")
    check_rank("teacher_probs", teacher_probs, 3, "[T, B, K]")
    num_teacher, b, k = teacher_probs.shape
    num_student = student.shape[0]
    if student.shape[1:] != (b, k) or num_student < max(num_teacher, 2):
        raise ValueError(
            f"student [V, B, K] must match teacher [T, B, K]={teacher_probs.shape} in B and K "
            f"and have V >= max(T, 2) crops, got student {student.shape}.")
    check_positive("student_temp", student_temp)
    student_log_probs = jax.nn.log_softmax(f32(student) / student_temp, axis=-1)
    # Measured on XLA:CPU, this einsum beats an "all pairs minus same crop" sum (1.6×) and
    # a broadcast product (2.7×) for forward + backward at 10 × 64 × 65536.
    cross = -jnp.einsum("ibk,vbk->iv", lax.stop_gradient(f32(teacher_probs)),
                        student_log_probs) / b  # [T, V]
    pairs = jnp.arange(num_teacher)[:, None] != jnp.arange(num_student)[None, :]
    return global_mean(jnp.sum(jnp.where(pairs, cross, 0.0)) / jnp.sum(pairs), axis_name)


def ibot_patch_loss(student, teacher_probs, mask, *, student_temp: float = 0.1,
                    axis_name=None):
    """iBOT masked-patch loss (facebookresearch/dinov2 ``iBOTPatchLoss.forward``).

    Args:
      student: [B, P, K] student patch-head outputs.
      teacher_probs: [B, P, K] teacher patch probabilities (``centered_teacher_probs`` or
        ``sinkhorn``), constants.
      mask: [B, P] bool/0-1, True where the student's patch was masked.
      student_temp: τ_s = 0.1.
    Returns:
      Scalar: mean over the global batch of each image's Σ over masked patches of
      −Σ_k t·log_softmax(s/τ_s), divided by max(1, its masked count). An image with no
      masked patch contributes 0, as in dinov2.
    """
    check_rank("student", student, 3, "[B, P, K]")
    check_same_shape("student", student, "teacher_probs", teacher_probs)
    if jnp.shape(mask) != student.shape[:2]:
        raise ValueError(f"mask must have shape [B, P]={student.shape[:2]}, got {jnp.shape(mask)}.")
    check_positive("student_temp", student_temp)
    mask = f32(mask)
    log_probs = jax.nn.log_softmax(f32(student) / student_temp, axis=-1)
    per_patch = jnp.sum(lax.stop_gradient(f32(teacher_probs)) * log_probs, axis=-1)  # [B, P]
    per_image = jnp.sum(per_patch * mask, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
    return global_mean(-jnp.mean(per_image), axis_name)


def ibot_patch_center(teacher_patch_logits, center, *, center_momentum: float = 0.9,
                      axis_name=None):
    """iBOT's patch center update: m·center + (1−m)·mean_b(mean_p(teacher logits)).

    Args: teacher_patch_logits [B, P, K]; center [K]. Returns: new center [K].
    """
    check_rank("teacher_patch_logits", teacher_patch_logits, 3, "[B, P, K]")
    # every image has P patches: the mean of the image means is the mean of all patches
    return update_center(teacher_patch_logits.reshape(-1, teacher_patch_logits.shape[-1]),
                         center, center_momentum=center_momentum, axis_name=axis_name)


def ibot_gathered_patch_loss(student, teacher_probs, weights, *, num_images: int,
                             student_temp: float = 0.1, axis_name=None):
    """``ibot_patch_loss`` on masked tokens gathered into a buffer (dinov2
    ``iBOTPatchLoss.forward_masked``), so the heads run on masked tokens only.

    Args:
      student: [M, K] student patch-head outputs of the buffer's tokens.
      teacher_probs: [M, K] teacher probabilities of the same tokens, constants.
      weights: [M] each token's 1/(its image's masked count); 0 for padding.
      num_images: images on this device the tokens come from (masked or not: dinov2
        divides by every global crop).
      student_temp: τ_s = 0.1.
    Returns:
      Scalar: −Σ_m w_m Σ_k t·log_softmax(s/τ_s) / num_images, averaged over devices; equal
      to ``ibot_patch_loss`` of the same masks.
    """
    check_rank("student", student, 2, "[M, K]")
    check_same_shape("student", student, "teacher_probs", teacher_probs)
    if jnp.shape(weights) != student.shape[:1]:
        raise ValueError(f"weights must have shape [M]={student.shape[:1]}, got "
                         f"{jnp.shape(weights)}.")
    check_positive("student_temp", student_temp)
    log_probs = jax.nn.log_softmax(f32(student) / student_temp, axis=-1)
    per_token = jnp.sum(lax.stop_gradient(f32(teacher_probs)) * log_probs, axis=-1)  # [M]
    return global_mean(-jnp.sum(per_token * f32(weights)) / num_images, axis_name)


def koleo_loss(x, *, eps: float = 1e-8, axis_name=None):
    """KoLeo spreading regulariser (facebookresearch/dinov2 ``KoLeoLoss``).

    L2-normalise rows (eps 1e-8); find each row's nearest other row by inner product;
    loss = −mean(log(‖x − x_nn + eps‖ + eps)) (torch ``PairwiseDistance`` adds eps to the
    difference).

    Args:
      x: [B, D] features (dinov2 applies it to each global crop's student CLS tokens).
      axis_name: None reproduces dinov2, which computes KoLeo on each device's own
        batch; with a name, neighbours are searched over the global batch (gathered with
        gradient), so the value equals the single-device loss on the whole batch.
    Returns: scalar float32.
    """
    check_rank("x", x, 2, "[B, D]")
    if x.shape[0] < 2 and axis_name is None:
        raise ValueError(f"x needs at least 2 rows to have a nearest neighbour, got {x.shape}.")
    x = l2_normalize(f32(x), eps)
    candidates = gather_batch(x, axis_name)
    b = x.shape[0]
    dots = lax.stop_gradient(x @ candidates.T)
    own = jnp.arange(b) + device_index(axis_name) * b
    dots = jnp.where(jnp.arange(candidates.shape[0])[None, :] == own[:, None], -1.0, dots)
    neighbours = candidates[jnp.argmax(dots, axis=1)]
    distances = jnp.sqrt(jnp.sum((x - neighbours + eps) ** 2, axis=-1))
    return global_mean(-jnp.mean(jnp.log(distances + eps)), axis_name)
