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
    check_rank("student", student, 3, "[V, B, K]")
    check_rank("teacher", teacher, 3, "[T, B, K]")
    num_teacher, b, k = teacher.shape
    num_student = student.shape[0]
    if student.shape[1:] != (b, k) or num_student < max(num_teacher, 2):
        raise ValueError(
            f"student [V, B, K] must match teacher [T, B, K]={teacher.shape} in B and K and "
            f"have V >= max(T, 2) crops, got student {student.shape}.")
    if jnp.shape(center) not in ((k,), (1, k)):
        raise ValueError(f"center must have shape [K]=({k},), got {jnp.shape(center)}.")
    check_positive("student_temp", student_temp)
    center = f32(center).reshape(-1)
    teacher_probs = centered_teacher_probs(teacher, center, temperature=teacher_temp)
    student_log_probs = jax.nn.log_softmax(f32(student) / student_temp, axis=-1)
    # Measured on XLA:CPU, this einsum beats an "all pairs minus same crop" sum (1.6×) and
    # a broadcast product (2.7×) for forward + backward at 10 × 64 × 65536.
    cross = -jnp.einsum("ibk,vbk->iv", teacher_probs, student_log_probs) / b  # [T, V]
    pairs = jnp.arange(num_teacher)[:, None] != jnp.arange(num_student)[None, :]
    loss = jnp.sum(jnp.where(pairs, cross, 0.0)) / jnp.sum(pairs)
    loss = global_mean(loss, axis_name)

    total = global_sum(jnp.sum(lax.stop_gradient(f32(teacher)), axis=(0, 1)), axis_name)
    batch_center = total / (num_teacher * b * num_devices(axis_name))
    new_center = center * center_momentum + batch_center * (1 - center_momentum)
    return loss, new_center


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
    """iBOT/dinov2 patch center update: m·center + (1−m)·mean_b(mean_p(teacher logits)).

    Args: teacher_patch_logits [B, P, K]; center [K]. Returns: new center [K].
    """
    check_rank("teacher_patch_logits", teacher_patch_logits, 3, "[B, P, K]")
    logits = lax.stop_gradient(f32(teacher_patch_logits))
    b = logits.shape[0]
    batch_center = global_sum(jnp.sum(jnp.mean(logits, axis=1), axis=0), axis_name)
    batch_center = batch_center / (b * num_devices(axis_name))
    return f32(center).reshape(-1) * center_momentum + batch_center * (1 - center_momentum)


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
