"""QB-Heat's extrapolation (a known answer) and what its encoder sees."""
import jax
import numpy as np
import pytest
from test_train import tiny_config

from jax_ssl.methods import qbheat as qbheat_method
from jax_ssl.models import qbheat


def linear_map(rng, height, width, channels):
    """z(x, y) = c + x·u + y·v on a height × width grid (x the column): a feature map
    exactly linear along x and y, with c, u, v independent; and the per-cell A, B with
    z·A = u, z·B = v for every such z (so ∂z/∂x = zA, ∂z/∂y = zB hold exactly)."""
    c, u, v = rng.normal(size=(3, channels))
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    z = c + cols[..., None] * u + rows[..., None] * v
    basis = np.stack([c, u, v])
    a = np.linalg.pinv(basis) @ np.stack([u, np.zeros_like(u), np.zeros_like(u)])
    b = np.linalg.pinv(basis) @ np.stack([v, np.zeros_like(v), np.zeros_like(v)])
    return z.astype(np.float32), a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("quarter", [(2, 2), (3, 5)])
def test_extrapolation_reproduces_a_map_linear_along_x_and_y(rng, quarter):
    height, width = quarter
    full, a, b = linear_map(rng, 2 * height, 2 * width, 8)
    visible = full[None, :height, :width]
    out = qbheat.HeatExtrapolation().apply({"params": {"a": a, "b": b}}, visible)
    np.testing.assert_allclose(out[0], full, rtol=1e-4, atol=1e-4)
    # the diagonal quarter: the right one moved down, (I + wA) then (I + hB)
    a, b = rng.normal(size=(2, 8, 8)).astype(np.float32) * 0.1
    out = qbheat.HeatExtrapolation().apply({"params": {"a": a, "b": b}}, visible)[0]
    right = visible[0] + width * visible[0] @ a
    np.testing.assert_allclose(out[height:, width:], right + height * right @ b, rtol=1e-4,
                               atol=1e-4)
    # at init (A = B = 0) every quarter is a copy of the visible one
    copies = qbheat.HeatExtrapolation().apply(
        {"params": {"a": np.zeros_like(a), "b": np.zeros_like(b)}}, visible)[0]
    for rows in (slice(0, height), slice(height, None)):
        for cols in (slice(0, width), slice(width, None)):
            np.testing.assert_array_equal(copies[rows, cols], visible[0])


@pytest.mark.parametrize("backbone", ["vit", "resnet"])
def test_encoder_sees_only_the_top_left_quarter_and_the_loss_the_other_three(backbone, rng):
    """Changing the pixels outside the top-left quarter changes neither the visible
    features nor the predictions; the loss counts the three other quarters only."""
    config = tiny_config("qbheat")
    if backbone == "resnet":
        config.model.backbone = "resnet18"
        config.model.backbone_kwargs = dict(cifar_stem=True, width=4)
    images = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    net = qbheat_method.network(config, None)
    variables = jax.jit(lambda: net.init(jax.random.PRNGKey(0), images, train=False))()
    run = jax.jit(lambda x: net.apply(variables, x, train=False))
    pred, features = run(images)
    changed = images.copy()
    changed[:, 8:] += 5.0
    changed[:, :, 8:] -= 3.0
    pred_changed, features_changed = run(changed)
    np.testing.assert_allclose(features_changed, features, atol=1e-5)
    np.testing.assert_allclose(pred_changed, pred, atol=1e-5)
    cell = qbheat_method.cell_size(images.shape, features.shape)
    assert pred.shape == (2, (16 // cell) ** 2, cell * cell * 3)
    height, width = features.shape[1:3]
    masked = np.asarray(qbheat_method.masked_cells(height, width)).reshape(2 * height, -1)
    assert masked.sum() == 3 * height * width and not masked[:height, :width].any()


def test_cells_that_do_not_tile_the_image_are_a_clear_error():
    with pytest.raises(ValueError, match="multiple of twice the backbone's stride"):
        qbheat_method.cell_size((1, 30, 30, 3), (1, 2, 2, 64))
    assert qbheat_method.cell_size((1, 28, 28, 3), (1, 2, 2, 64)) == 7
