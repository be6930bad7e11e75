"""MAE networks: random masking, shapes, gradients, and an encoder that sees only the
visible patches. Everything that runs uses a tiny MAE (16 px, patch 4: 16 patches)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl.models.mae import MAE, MAES, mae_vit_b16, random_masking
from jax_ssl.models.vit import VisionTransformer

KEY = jax.random.key(0)
PATCH, SIZE, NUM_PATCHES = 4, 16, 16


def tiny_mae(**overrides) -> MAE:
    kwargs = dict(patch_size=PATCH, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16,
                  decoder_depth=1, decoder_num_heads=2, image_size=SIZE)
    return MAE(**{**kwargs, **overrides})


@pytest.fixture(scope="module")
def params():
    """tiny_mae()'s parameters (a jitted init: eager init compiles op by op, slowly)."""
    return jax.jit(tiny_mae().init)(KEY, jnp.zeros((1, SIZE, SIZE, 3)))["params"]


def images(rng, batch=2):
    return jnp.asarray(rng.normal(size=(batch, SIZE, SIZE, 3)), jnp.float32)


def pixel_mask(mask):
    """[B, L] patch mask -> [B, H, W, 1] pixel mask (row-major patches)."""
    grid = SIZE // PATCH
    mask = np.asarray(mask).reshape(-1, grid, grid)
    return np.repeat(np.repeat(mask, PATCH, axis=1), PATCH, axis=2)[..., None]


@pytest.mark.parametrize("num_patches, mask_ratio", [(16, 0.75), (49, 0.75), (10, 0.6),
                                                     (196, 0.75)])
def test_random_masking(num_patches, mask_ratio):
    batch = 5
    rng = jax.random.key(1)
    ids_keep, mask, ids_restore = random_masking(rng, batch, num_patches, mask_ratio)
    num_keep = int(num_patches * (1 - mask_ratio))
    assert ids_keep.shape == (batch, num_keep) and ids_keep.dtype == jnp.int32
    assert mask.shape == ids_restore.shape == (batch, num_patches)
    assert mask.dtype == jnp.float32 and ids_restore.dtype == jnp.int32
    ids_keep, mask, ids_restore = map(np.asarray, (ids_keep, mask, ids_restore))
    # MAE keeps the patches with the smallest noise, in order of increasing noise.
    noise = np.asarray(jax.random.uniform(rng, (batch, num_patches)))
    np.testing.assert_array_equal(ids_keep, np.argsort(noise, axis=1)[:, :num_keep])
    for keep, row_mask, restore in zip(ids_keep, mask, ids_restore, strict=True):
        assert len(set(keep.tolist())) == num_keep
        assert row_mask.sum() == num_patches - num_keep
        assert np.all(row_mask[keep] == 0)
        # ids_restore is a permutation that puts the kept patches first, in keep order:
        # gathering the shuffled sequence (kept, then removed) with it restores the order.
        np.testing.assert_array_equal(np.sort(restore), np.arange(num_patches))
        shuffled = np.empty(num_patches, dtype=np.int64)
        shuffled[restore] = np.arange(num_patches)
        np.testing.assert_array_equal(shuffled[:num_keep], keep)
        np.testing.assert_array_equal(shuffled[restore], np.arange(num_patches))
        np.testing.assert_array_equal(row_mask, (restore >= num_keep).astype(np.float32))


def test_masking_differs_per_sample():
    _, mask, _ = random_masking(jax.random.key(2), 8, 64, 0.75)
    assert len({tuple(row) for row in np.asarray(mask).tolist()}) == 8


def test_output_shapes(rng, params):
    model = tiny_mae()
    x = images(rng)
    out = model.apply({"params": params}, x, rngs={"masking": jax.random.key(1)})
    assert out["pred"].shape == (2, NUM_PATCHES, PATCH * PATCH * 3)
    assert out["mask"].shape == out["ids_restore"].shape == (2, NUM_PATCHES)
    assert out["latent"].shape == (2, 1 + 4, 32)  # CLS + int(16·0.25) visible patches
    np.testing.assert_array_equal(out["mask"].sum(1), 12)


def test_official_sizes():
    """mae_vit_base_patch16_dec512d8b has 111,907,840 parameters in PyTorch, counting its
    two fixed sin-cos tables (encoder 197×768, decoder 197×512) that are buffers here."""
    shapes = jax.eval_shape(mae_vit_b16().init, KEY, jnp.zeros((1, 224, 224, 3)))
    assert sum(x.size for x in jax.tree.leaves(shapes)) == 111_907_840 - 197 * (768 + 512)
    out = jax.eval_shape(lambda: MAES["mae_vit_tiny"]().init_with_output(
        KEY, jnp.zeros((2, 32, 32, 3)))[0])
    assert out["pred"].shape == (2, 64, 48) and out["latent"].shape == (2, 17, 192)
    assert set(MAES) >= {"mae_vit_b16", "mae_vit_l16", "mae_vit_s16"}


def test_masking_follows_the_rng(rng, params):
    model = tiny_mae()
    x = images(rng)
    masks = [model.apply({"params": params}, x, rngs={"masking": jax.random.key(i)})["mask"]
             for i in (1, 1, 2)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])


def test_encoder_sees_only_visible_patches(rng, params):
    model = tiny_mae()
    x = images(rng)
    variables = {"params": params}
    rngs = {"masking": jax.random.key(3)}
    out = model.apply(variables, x, rngs=rngs)
    removed = pixel_mask(out["mask"])
    noise = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    changed_removed = model.apply(variables, x + noise * removed, rngs=rngs)
    np.testing.assert_array_equal(changed_removed["latent"], out["latent"])
    np.testing.assert_array_equal(changed_removed["pred"], out["pred"])
    changed_visible = model.apply(variables, x + noise * (1 - removed), rngs=rngs)
    assert not np.allclose(changed_visible["latent"], out["latent"], atol=1e-3)


def test_encoder_is_a_sincos_vit(rng, params):
    """params['encoder'] runs as a VisionTransformer(pos_embed='sincos')."""
    model = tiny_mae()
    x = images(rng)
    rngs = {"masking": jax.random.key(4)}
    out = model.apply({"params": params}, x, rngs=rngs)
    vit = VisionTransformer(patch_size=PATCH, embed_dim=32, depth=2, num_heads=2,
                            pos_embed="sincos", image_size=SIZE)
    ids_keep = jnp.argsort(out["ids_restore"], axis=1)[:, :4]  # the kept patches, in order
    encoded = vit.apply({"params": params["encoder"]}, x, patch_ids=ids_keep)
    np.testing.assert_allclose(encoded["patch_tokens"], out["latent"][:, 1:], atol=1e-6)
    np.testing.assert_allclose(encoded["cls"], out["latent"][:, 0], atol=1e-6)


def test_gradients_reach_every_parameter(rng, params):
    model = tiny_mae()
    x = images(rng)
    target = jnp.asarray(rng.normal(size=(2, NUM_PATCHES, PATCH * PATCH * 3)), jnp.float32)

    def loss(params):
        out = model.apply({"params": params}, x, rngs={"masking": jax.random.key(5)})
        error = jnp.mean((out["pred"] - target) ** 2, axis=-1)
        return jnp.sum(error * out["mask"]) / jnp.sum(out["mask"])

    grads = jax.jit(jax.grad(loss))(params)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert float(jnp.abs(grad).max()) > 0, jax.tree_util.keystr(path)


def test_bfloat16_and_wrong_size(rng, params):
    model = tiny_mae(dtype=jnp.bfloat16)
    x = images(rng)
    shapes = jax.eval_shape(model.init, KEY, x)
    assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
    variables = {"params": params}
    out = model.apply(variables, x, rngs={"masking": jax.random.key(1)})
    assert out["pred"].dtype == jnp.bfloat16 and out["mask"].dtype == jnp.float32
    with pytest.raises(ValueError, match="16 px"):
        model.apply(variables, jnp.zeros((1, 32, 32, 3)), rngs={"masking": KEY})
