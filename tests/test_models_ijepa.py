"""I-JEPA's multi-block mask sampler, token gathering and predictor (jax_ssl.models.ijepa)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl.models import ijepa

KEY = jax.random.key(0)


def _sample(seed, batch_size=8, **kw):
    sampler = ijepa.MultiBlockMaskSampler(**{"grid_size": 14, **kw})
    return sampler(np.random.default_rng(seed), batch_size)


@pytest.mark.parametrize("grid", [14, 16, (12, 20)])
@pytest.mark.parametrize("seed", range(3))
def test_masks_have_fixed_counts_unique_in_range_and_disjoint(grid, seed):
    context, targets = _sample(seed, grid_size=grid)
    height, width = (grid, grid) if isinstance(grid, int) else grid
    assert context.dtype == targets.dtype == np.int32
    assert context.ndim == 2 and context.shape[0] == 8
    assert targets.ndim == 3 and targets.shape[:2] == (4, 8)
    assert context.shape[1] > 4 and targets.shape[2] > 4  # more than min_keep
    for idx in [context, *targets]:
        assert idx.min() >= 0 and idx.max() < height * width
        for row in idx:
            assert len(np.unique(row)) == len(row)
    for b in range(8):
        for t in range(4):
            assert not np.intersect1d(context[b], targets[t, b]).size


def test_target_blocks_are_whole_rectangles_within_the_scale_and_aspect_bounds():
    height = width = 32  # fine enough that rounding h and w moves area and ratio < 12%
    tol = 0.12
    sizes = set()
    for seed in range(20):
        _, targets = _sample(seed, batch_size=4, grid_size=height)
        rows, cols = targets // width, targets % width
        h = rows.max(-1) - rows.min(-1) + 1
        w = cols.max(-1) - cols.min(-1) + 1
        assert len(set(h.ravel())) == len(set(w.ravel())) == 1  # one size per batch
        h, w = int(h.flat[0]), int(w.flat[0])
        assert targets.shape[-1] == h * w  # the full rectangle: never truncated
        assert 0.15 * (1 - tol) <= h * w / (height * width) <= 0.2 * (1 + tol)
        assert 0.75 * (1 - tol) <= h / w <= 1.5 * (1 + tol)
        # the official draws corners from [0, H - h): the last row and column stay free
        assert rows.max() < height - 1 and cols.max() < width - 1
        sizes.add((h, w))
    assert len(sizes) > 3  # the size is redrawn per batch


def test_context_is_a_square_block_minus_the_targets():
    context, targets = _sample(0, batch_size=4, grid_size=32, num_targets=1,
                               target_scale=(0.01, 0.01))
    rows, cols = context // 32, context % 32
    side = rows.max(-1) - rows.min(-1) + 1
    np.testing.assert_array_equal(cols.max(-1) - cols.min(-1) + 1, side)  # aspect 1
    assert len(set(side)) == 1
    side = int(side[0])
    assert 29 <= side <= 31  # round(√int(0.85·1024)) = 29 up to the clip at 32 - 1
    assert side * side - targets.shape[-1] <= context.shape[1] <= side * side


def test_sampler_is_deterministic_for_a_seed():
    a, b = _sample(7), _sample(7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = _sample(8)
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


def test_context_gives_up_target_constraints_when_it_cannot_avoid_them():
    # four 5x5 targets inside the 7x7 context mostly leave it 10 patches or fewer
    context, targets = _sample(0, batch_size=4, grid_size=8, target_scale=(0.4, 0.4),
                               target_aspect_ratio=(1.0, 1.0), context_scale=(1.0, 1.0),
                               min_keep=10)
    assert context.shape[1] > 10 and targets.shape[-1] == 25
    assert all(len(np.unique(row)) == len(row) for row in context)
    assert any(np.intersect1d(context[b], targets[t, b]).size
               for b in range(4) for t in range(4))


def test_too_small_blocks_raise():
    with pytest.raises(ValueError, match="cannot hold more than min_keep=4"):
        _sample(0, grid_size=4)
    with pytest.raises(ValueError, match="at least 2x2"):
        ijepa.MultiBlockMaskSampler(grid_size=(1, 8))


def test_gather_tokens_matches_take_along_axis(rng):
    x = rng.normal(size=(3, 10, 4)).astype(np.float32)
    idx = rng.integers(0, 10, size=(2, 3, 5))
    want = np.stack([np.take_along_axis(x, i[..., None], axis=1) for i in idx])
    np.testing.assert_array_equal(ijepa.gather_tokens(x, idx), want)
    np.testing.assert_array_equal(ijepa.gather_tokens(x, idx[0]), want[0])
    with pytest.raises(ValueError, match="B = 3"):
        ijepa.gather_tokens(x, idx[:, :2])


def test_gather_tokens_gradient_scatters_back(rng):
    x = jnp.asarray(rng.normal(size=(2, 6, 3)), jnp.float32)
    idx = np.array([[0, 0, 5], [1, 2, 3]])
    grad = jax.grad(lambda x: ijepa.gather_tokens(x, idx).sum())(x)
    counts = np.zeros((2, 6))
    np.add.at(counts, (np.arange(2)[:, None], idx), 1)
    np.testing.assert_array_equal(grad, np.repeat(counts[..., None], 3, axis=-1))


GRID = 8
TINY = dict(grid_size=GRID, predictor_dim=8, depth=2, num_heads=2)


def _predictor_inputs(rng, batch_size=2, embed_dim=12):
    sampler = ijepa.MultiBlockMaskSampler(grid_size=GRID, num_targets=3)
    context_idx, target_idx = sampler(np.random.default_rng(0), batch_size)
    tokens = rng.normal(size=(batch_size, GRID * GRID, embed_dim)).astype(np.float32)
    return ijepa.gather_tokens(tokens, context_idx), context_idx, target_idx


def test_predictor_shapes_and_gradients_reach_every_parameter(rng):
    predictor = ijepa.IJEPAPredictor(**TINY)
    context, context_idx, target_idx = _predictor_inputs(rng)
    params = predictor.init(KEY, context, context_idx, target_idx)["params"]
    assert params["mask_token"].shape == (8,)
    assert params["predictor_embed"]["kernel"].shape == (12, 8)
    assert params["predictor_proj"]["kernel"].shape == (8, 12)
    assert {"blocks_0", "blocks_1", "predictor_norm"} <= set(params)
    out = predictor.apply({"params": params}, context, context_idx, target_idx)
    assert out.shape == (*target_idx.shape, 12) and out.dtype == jnp.float32

    weights = rng.normal(size=out.shape)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(
        predictor.apply({"params": p}, context, context_idx, target_idx) * weights)))(params)
    flat = jax.tree_util.tree_flatten_with_path(grads)[0]
    assert all(np.abs(g).max() > 0 for _, g in flat), [
        jax.tree_util.keystr(k) for k, g in flat if not np.abs(g).max() > 0]


def test_predictor_blocks_are_independent_and_follow_their_positions(rng):
    predictor = ijepa.IJEPAPredictor(**TINY)
    context, context_idx, target_idx = _predictor_inputs(rng)
    variables = predictor.init(KEY, context, context_idx, target_idx)
    apply = jax.jit(predictor.apply)
    out = apply(variables, context, context_idx, target_idx)
    # each target block sees the context only: predicting it alone gives the same
    single = apply(variables, context, context_idx, target_idx[1:2])
    np.testing.assert_allclose(single[0], out[1], rtol=1e-5, atol=1e-5)
    # the mask tokens differ only by position: permuting them permutes the predictions
    perm = rng.permutation(target_idx.shape[-1])
    permuted = apply(variables, context, context_idx, target_idx[..., perm])
    np.testing.assert_allclose(permuted, out[:, :, perm], rtol=1e-5, atol=1e-5)


def test_predictor_bfloat16_compute_keeps_float32_parameters(rng):
    predictor = ijepa.IJEPAPredictor(**TINY, dtype=jnp.bfloat16)
    context, context_idx, target_idx = _predictor_inputs(rng)
    params = predictor.init(KEY, context, context_idx, target_idx)["params"]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    out = predictor.apply({"params": params}, context, context_idx, target_idx)
    assert out.dtype == jnp.bfloat16


def test_predictor_drop_path_in_training(rng):
    predictor = ijepa.IJEPAPredictor(**TINY, drop_path_rate=0.5)
    context, context_idx, target_idx = _predictor_inputs(rng)
    variables = predictor.init(KEY, context, context_idx, target_idx)
    eval_out = predictor.apply(variables, context, context_idx, target_idx)
    train_out = predictor.apply(variables, context, context_idx, target_idx, train=True,
                                rngs={"dropout": jax.random.key(1)})
    assert not np.allclose(train_out, eval_out)


# --- The in-step masks (``draw``): static shapes, padding masked out of attention.

def _drawn(batch_size=8, devices=1, seed=3, **kw):
    """``draw``'s masks of the global batch's images 0…B−1 on ``devices`` devices, the
    per-device arrays concatenated in device order."""
    from jax.sharding import PartitionSpec as P

    from jax_ssl import parallel
    sampler = ijepa.MultiBlockMaskSampler(**{"grid_size": 14, **kw})
    key = jax.random.PRNGKey(seed)
    if devices == 1:
        return sampler, jax.device_get(jax.jit(
            lambda k: sampler.draw(k, jnp.arange(batch_size)))(key))
    share = batch_size // devices
    axis = parallel.DATA_AXIS

    def per_device(k):
        ids = jax.lax.axis_index(axis) * share + jnp.arange(share)
        out = sampler.draw(k, ids, axis_name=axis)
        return (out["context_idx"], out["target_idx"][:, None], out["context_valid"][None],
                out["target_valid"][None])
    draw = jax.shard_map(per_device, mesh=parallel.data_mesh(jax.devices()[:devices]),
                         in_specs=P(), out_specs=(P(axis), P(None, axis), P(axis), P(axis)))
    context, targets, context_valid, target_valid = jax.device_get(jax.jit(draw)(key))
    assert (context_valid == context_valid[:1]).all()  # every device truncates alike
    return sampler, {"context_idx": context, "target_idx": targets.reshape(
        targets.shape[0], batch_size, -1), "context_valid": context_valid[0],
        "target_valid": target_valid[0]}


@pytest.mark.parametrize("seed", range(3))
def test_drawn_masks_are_the_collators_blocks_in_static_buffers(seed):
    """Every image: T target blocks of the batch's one (h, w) from the size table, whole
    rectangles inside [0, H−1)×[0, W−1); a context of more than min_keep patches that
    avoids every target, truncated to the batch's smallest context; sorted indices;
    buffers of the largest blocks' sizes."""
    sampler, masks = _drawn(seed=seed, min_keep=10)
    context_size, target_size = sampler.buffer_sizes()
    assert masks["context_idx"].shape == (8, context_size)
    assert masks["target_idx"].shape == (4, 8, target_size)
    num_context, num_target = masks["context_valid"].sum(), masks["target_valid"].sum()
    assert masks["context_valid"][:num_context].all()  # a prefix
    assert num_context > 10
    table = sampler.size_table(sampler.target_scale, sampler.target_aspect_ratio)
    assert num_target in set(np.prod(table, axis=1))
    for b in range(8):
        context = masks["context_idx"][b, :num_context]
        assert (np.diff(context) > 0).all()
        for t in range(4):
            block = masks["target_idx"][t, b, :num_target]
            rows, cols = np.divmod(block, 14)
            height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
            assert height * width == num_target == len(np.unique(block))
            assert rows.max() < 13 and cols.max() < 13
            assert not set(context) & set(block)


def test_drawn_masks_are_the_same_on_any_number_of_devices():
    _, one = _drawn(batch_size=16)
    _, eight = _drawn(batch_size=16, devices=8)
    jax.tree.map(np.testing.assert_array_equal, one, eight)


def test_predictor_ignores_padding_and_predicts_as_on_the_real_sets(rng):
    """Padded index sets with their valid flags give, at the real target tokens, the
    predictions of the unpadded sets (padding is masked out of attention)."""
    predictor = ijepa.IJEPAPredictor(**TINY)
    context, context_idx, target_idx = _predictor_inputs(rng)
    variables = predictor.init(KEY, context, context_idx, target_idx)
    expected = predictor.apply(variables, context, context_idx, target_idx)
    pad_c, pad_t = 5, 3
    padded = predictor.apply(
        variables, np.pad(context, ((0, 0), (0, pad_c), (0, 0)), constant_values=7.0),
        np.pad(context_idx, ((0, 0), (0, pad_c))), np.pad(target_idx, ((0, 0), (0, 0), (0, pad_t))),
        context_valid=np.arange(context_idx.shape[1] + pad_c) < context_idx.shape[1],
        target_valid=np.arange(target_idx.shape[2] + pad_t) < target_idx.shape[2])
    np.testing.assert_allclose(padded[:, :, :target_idx.shape[2]], expected, rtol=1e-5,
                               atol=1e-5)
