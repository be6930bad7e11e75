"""patchify/unpatchify layout, MAE's loss with per-patch unbiased variance, I-JEPA's loss."""
import numpy as np
import pytest

from jax_ssl import losses


def test_patchify_order_matches_mae():
    # MAE: imgs NCHW -> reshape(N, C, h, p, w, p) -> einsum('nchpwq->nhwpqc').
    images = np.arange(2 * 8 * 12 * 3, dtype=np.float32).reshape(2, 8, 12, 3)  # NHWC
    p = 4
    nchw = images.transpose(0, 3, 1, 2)
    x = nchw.reshape(2, 3, 2, p, 3, p)
    expected = np.einsum("nchpwq->nhwpqc", x).reshape(2, 6, p * p * 3)
    np.testing.assert_array_equal(losses.patchify(images, p), expected)


def test_patchify_hand_case():
    # A 4x4 single-channel image of its pixel indices, 2x2 patches: patch 1 is the top
    # right block (columns 2–3 of rows 0–1), read row by row.
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    patches = np.asarray(losses.patchify(image, 2))
    np.testing.assert_array_equal(patches[0, 1], [2, 3, 6, 7])
    np.testing.assert_array_equal(patches[0, 2], [8, 9, 12, 13])


def test_unpatchify_inverts_patchify(rng):
    images = rng.normal(size=(2, 16, 24, 3)).astype(np.float32)
    patches = losses.patchify(images, 8)
    np.testing.assert_array_equal(losses.unpatchify(patches, 8, grid=(2, 3)), images)
    square = rng.normal(size=(1, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        losses.unpatchify(losses.patchify(square, 4), 4, channels=1), square)


def test_patchify_bad_arguments(rng):
    with pytest.raises(ValueError, match="patch_size"):
        losses.patchify(np.zeros((1, 10, 10, 3)), 4)
    with pytest.raises(ValueError, match="square"):
        losses.unpatchify(np.zeros((1, 6, 48)), 4)
    with pytest.raises(ValueError, match="channels"):
        losses.unpatchify(np.zeros((1, 4, 10)), 4)


def np_mae(pred, target, mask, norm_pix=True):
    """facebookresearch/mae forward_loss (torch ``var`` is unbiased)."""
    if norm_pix:
        mean = target.mean(-1, keepdims=True)
        var = target.var(-1, ddof=1, keepdims=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(-1)
    return (loss * mask).sum() / mask.sum()


def test_mae_loss_matches_official(rng):
    pred, target = rng.normal(size=(3, 5, 12)), 4 * rng.normal(size=(3, 5, 12)) + 1
    mask = (rng.random((3, 5)) < 0.75).astype(np.float32)
    mask[0, 0] = 1
    for norm_pix in (True, False):
        np.testing.assert_allclose(losses.mae_loss(pred, target, mask, norm_pix=norm_pix),
                                   np_mae(pred, target, mask, norm_pix), rtol=1e-5)


def test_mae_norm_pix_uses_unbiased_variance():
    # One patch [0, 2]: mean 1, unbiased variance 2 (biased would be 1). The normalised
    # target is ±1/√2; predicting 0 gives MSE 1/2. Biased variance would give 1.
    target = np.array([[[0.0, 2.0]]])
    loss = losses.mae_loss(np.zeros_like(target), target, np.ones((1, 1)))
    np.testing.assert_allclose(loss, 0.5 / (1 + 0.5e-6), rtol=1e-6)


def test_mae_loss_only_counts_removed_patches(rng):
    pred, target = rng.normal(size=(2, 4, 6)), rng.normal(size=(2, 4, 6))
    mask = np.array([[1, 0, 0, 1], [0, 1, 0, 0]], np.float32)
    changed = pred.copy()
    changed[mask == 0] = 100.0
    np.testing.assert_allclose(losses.mae_loss(changed, target, mask),
                               losses.mae_loss(pred, target, mask), rtol=1e-6)


def test_mae_bad_arguments(rng):
    pred = rng.normal(size=(2, 4, 6))
    with pytest.raises(ValueError, match="mask"):
        losses.mae_loss(pred, pred, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="mask"):
        losses.mae_loss(pred, pred, np.ones((2, 3)))
    with pytest.raises(ValueError, match="target"):
        losses.mae_loss(pred, pred[:, :3], np.ones((2, 4)))


def np_ijepa(pred, target):
    """ijepa: F.layer_norm(h, (D,)) (eps 1e-5, biased var), then F.smooth_l1_loss."""
    mean = target.mean(-1, keepdims=True)
    var = target.var(-1, keepdims=True)
    target = (target - mean) / np.sqrt(var + 1e-5)
    d = np.abs(pred - target)
    return np.mean(np.where(d < 1, 0.5 * d**2, d - 0.5))


def test_ijepa_loss_matches_official(rng):
    pred, target = rng.normal(size=(4, 7, 16)), 3 * rng.normal(size=(4, 7, 16)) + 2
    np.testing.assert_allclose(losses.ijepa_loss(pred, target), np_ijepa(pred, target),
                               rtol=1e-5)


def test_ijepa_loss_of_padded_sets_counts_the_valid_tokens_only(rng):
    pred, target = rng.normal(size=(3, 2, 6, 16)), 3 * rng.normal(size=(3, 2, 6, 16))
    valid = np.arange(6) < 4
    np.testing.assert_allclose(losses.ijepa_loss(pred, target, valid=valid),
                               np_ijepa(pred[..., :4, :], target[..., :4, :]), rtol=1e-5)


def test_ijepa_smooth_l1_hand_case():
    # Without the target layer norm: |d| = 0.5 -> 0.125, |d| = 3 -> 2.5; mean 1.3125.
    loss = losses.ijepa_loss(np.array([[0.5, 3.0]]), np.zeros((1, 2)), normalize_target=False)
    np.testing.assert_allclose(loss, 1.3125, rtol=1e-6)
