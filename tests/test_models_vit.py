"""ViT backbone: sizes, position embeddings (sin-cos, bicubic resizing), outputs, training
behaviour. Real configurations are checked with jax.eval_shape only; everything that runs
uses a tiny ViT."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_models_resnet import assert_conv_equals_lax

from jax_ssl.models import layers
from jax_ssl.models.vit import (
    VITS,
    Block,
    PatchEmbed,
    VisionTransformer,
    bicubic_resize_matrix,
    drop_path,
    interpolate_pos_embed,
    sincos_2d_pos_embed,
    vit_b16,
    vit_s16,
)

KEY = jax.random.key(0)


def tiny_vit(**overrides) -> VisionTransformer:
    kwargs = dict(patch_size=8, embed_dim=32, depth=2, num_heads=2, image_size=32)
    return VisionTransformer(**{**kwargs, **overrides})


@pytest.fixture(scope="module")
def params():
    """tiny_vit()'s parameters (a jitted init: eager init compiles op by op, slowly)."""
    return jax.jit(tiny_vit().init)(KEY, jnp.zeros((1, 32, 32, 3)))["params"]


def images(rng, size, batch=2):
    height, width = (size, size) if isinstance(size, int) else size
    return jnp.asarray(rng.normal(size=(batch, height, width, 3)), jnp.float32)


def num_params(tree) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


# ---------------------------------------------------------------------------------------
# NumPy transcriptions of the reference code
# ---------------------------------------------------------------------------------------


def _mae_1d_sincos(embed_dim, pos):
    """facebookresearch/mae util/pos_embed.py get_1d_sincos_pos_embed_from_grid."""
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.
    omega = 1. / 10000 ** omega
    pos = pos.reshape(-1)
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def mae_2d_sincos(embed_dim, grid_size, cls_token=False):
    """facebookresearch/mae util/pos_embed.py get_2d_sincos_pos_embed (+ _from_grid)."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = _mae_1d_sincos(embed_dim // 2, grid[0])
    emb_w = _mae_1d_sincos(embed_dim // 2, grid[1])
    pos_embed = np.concatenate([emb_h, emb_w], axis=1)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def torch_bicubic(image, size_out, scale_factor=None):
    """torch's upsample_bicubic2d (align_corners=False) on an [H, W, C] array.

    Transcribed from aten/src/ATen/native/UpSampleBicubic2d.cpp: source index
    scale·(o + 0.5) − 0.5 with scale = 1/scale_factor if given else in/out; four rows
    interpolated along x, then the results along y; reads clamped to the border.
    """
    a = -0.75

    def conv1(t):
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def conv2(t):
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    def cubic_interp1d(x0, x1, x2, x3, t):
        return x0 * conv2(t + 1) + x1 * conv1(t) + x2 * conv1(1 - t) + x3 * conv2(2 - t)

    in_h, in_w, _ = image.shape
    out_h, out_w = size_out
    scale_h = 1.0 / scale_factor[0] if scale_factor else in_h / out_h
    scale_w = 1.0 / scale_factor[1] if scale_factor else in_w / out_w

    def value(y, x):
        return image[min(max(y, 0), in_h - 1), min(max(x, 0), in_w - 1)]

    out = np.zeros((out_h, out_w, image.shape[2]))
    for oy in range(out_h):
        real_y = scale_h * (oy + 0.5) - 0.5
        iy = math.floor(real_y)
        ty = real_y - iy
        for ox in range(out_w):
            real_x = scale_w * (ox + 0.5) - 0.5
            ix = math.floor(real_x)
            tx = real_x - ix
            rows = [cubic_interp1d(*(value(iy - 1 + k, ix - 1 + j) for j in range(4)), tx)
                    for k in range(4)]
            out[oy, ox] = cubic_interp1d(*rows, ty)
    return out


# ---------------------------------------------------------------------------------------
# Sizes and shapes of the real configurations (eval_shape: nothing is computed)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("constructor, expected", [(vit_s16, 21_665_664), (vit_b16, 85_798_656)])
def test_param_counts_match_timm(constructor, expected):
    shapes = jax.eval_shape(constructor().init, KEY, jnp.zeros((1, 224, 224, 3)))
    assert num_params(shapes) == expected


@pytest.mark.parametrize("name, expected", [
    ("dinov2_vits14", 22_056_576), ("dinov2_vits14_reg", 22_058_112),
    ("dinov2_vitl14", 304_368_640), ("dinov2_vitl14_reg", 304_372_736),
    ("dinov2_vitg14", 1_136_480_768)])
def test_dinov2_param_counts_match_the_released_models(name, expected):
    """The hub models' state dicts (facebookresearch/dinov2 ``hub/backbones.py``; with
    LayerScale, the mask token, 1370 position rows, registers, ViT-g's SwiGLU)."""
    shapes = jax.eval_shape(VITS[name]().init, KEY, jnp.zeros((1, 224, 224, 3)))
    assert num_params(shapes) == expected


def test_name_table():
    for name in ("vit_ti16", "vit_s16", "vit_s8", "vit_b16", "vit_b8", "vit_b14", "vit_l16",
                 "vit_l14"):
        assert VITS[name].__name__ == name
    model = VITS["vit_b8"](pos_embed="sincos", image_size=96, drop_path_rate=0.1,
                           dtype=jnp.bfloat16)
    assert (model.patch_size, model.embed_dim, model.depth, model.num_heads) == (8, 768, 12, 12)
    assert (model.pos_embed, model.image_size, model.drop_path_rate) == ("sincos", 96, 0.1)
    assert VITS["vit_l14"]().depth == 24 and VITS["vit_ti16"]().embed_dim == 192


@pytest.mark.parametrize("name, size", [("vit_s16", 224), ("vit_s16", 96), ("vit_ti8", 32),
                                        ("vit_ti16", 32)])
def test_output_shapes(name, size):
    """Each made for 224 px; 96 and 32 px inputs get a resized position embedding."""
    model = VITS[name]()
    params = jax.eval_shape(model.init, KEY, jnp.zeros((1, 224, 224, 3)))
    out = jax.eval_shape(model.apply, params, jnp.zeros((2, size, size, 3)))
    num_patches = (size // model.patch_size) ** 2
    assert out["cls"].shape == (2, model.embed_dim)
    assert out["patch_tokens"].shape == (2, num_patches, model.embed_dim)
    assert out["layers"] == ()
    if (name, size) == ("vit_s16", 96):
        assert num_patches == 36


# ---------------------------------------------------------------------------------------
# Position embeddings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls_token", [False, True])
@pytest.mark.parametrize("embed_dim, grid", [(16, 4), (64, 7)])
def test_sincos_matches_mae(embed_dim, grid, cls_token):
    ours = sincos_2d_pos_embed(embed_dim, grid, cls_token=cls_token)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, mae_2d_sincos(embed_dim, grid, cls_token), atol=1e-6)


def test_sincos_first_half_encodes_the_column():
    table = sincos_2d_pos_embed(16, (2, 3))  # 2 rows, 3 columns, row-major
    first, second = table[:, :8], table[:, 8:]
    cols, rows = np.arange(6) % 3, np.arange(6) // 3
    np.testing.assert_allclose(first, _mae_1d_sincos(8, cols.astype(float)), atol=1e-6)
    np.testing.assert_allclose(second, _mae_1d_sincos(8, rows.astype(float)), atol=1e-6)
    # Same column, other row: first half equal; same row, other column: second half equal.
    np.testing.assert_array_equal(first[0], first[3])
    np.testing.assert_array_equal(second[0], second[1])


@pytest.mark.parametrize("grid_in, grid_out, offset", [
    (4, 7, 0.0),           # upsampling
    (14, 6, 0.0),          # 224 px -> 96 px with patch 16
    (14, 6, 0.1),          # the same with DINO's scale_factor
    ((3, 5), (6, 4), 0.0),  # non-square, one axis up, one down
    ((4, 4), (4, 6), 0.1),  # one axis unchanged under a scale factor
    (5, 5, 0.1),           # a scale factor resamples even an unchanged grid
])
@pytest.mark.parametrize("prefix", [0, 1])
def test_interpolation_matches_torch_bicubic(rng, grid_in, grid_out, offset, prefix):
    (h_in, w_in), (h_out, w_out) = [(g, g) if isinstance(g, int) else g
                                    for g in (grid_in, grid_out)]
    pos = rng.normal(size=(prefix + h_in * w_in, 8)).astype(np.float32)
    factor = ((h_out + offset) / h_in, (w_out + offset) / w_in) if offset else None
    patches = torch_bicubic(pos[prefix:].reshape(h_in, w_in, 8), (h_out, w_out), factor)
    expected = np.concatenate([pos[:prefix], patches.reshape(h_out * w_out, 8)])
    ours = interpolate_pos_embed(jnp.asarray(pos), grid_in, grid_out, offset=offset)
    assert ours.shape == expected.shape and ours.dtype == jnp.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_interpolation_to_the_same_grid_is_the_identity(rng):
    # At integer sample positions the kernel is the identity, so a 224 -> 224 "resize"
    # returns the embedding unchanged.
    np.testing.assert_array_equal(bicubic_resize_matrix(14, 14), np.eye(14))
    pos = jnp.asarray(rng.normal(size=(197, 16)), jnp.float32)
    np.testing.assert_array_equal(interpolate_pos_embed(pos, 14, 14), pos)


@pytest.mark.parametrize("pos_embed", ["learned", "sincos"])
def test_vit_interpolates_its_position_embedding(rng, params, pos_embed):
    """A ViT made for 32 px on 16 px inputs == a ViT made for 16 px whose (learned) table
    is the resized one."""
    model = tiny_vit(pos_embed=pos_embed)
    x = images(rng, 16)
    if pos_embed == "learned":
        table = params["pos_embed"][0]
    else:
        params = {k: v for k, v in params.items() if k != "pos_embed"}
        table = jnp.asarray(sincos_2d_pos_embed(32, 4, cls_token=True))
    small = tiny_vit(image_size=16)
    small_params = {**params, "pos_embed": interpolate_pos_embed(table, 4, 2)[None]}
    out = model.apply({"params": params}, x)
    expected = small.apply({"params": small_params}, x)
    assert out["patch_tokens"].shape == (2, 4, 32)
    np.testing.assert_allclose(out["patch_tokens"], expected["patch_tokens"], atol=1e-5)
    np.testing.assert_allclose(out["cls"], expected["cls"], atol=1e-5)


def test_sincos_vit_has_no_position_parameter():
    x = jnp.zeros((1, 32, 32, 3))
    assert "pos_embed" not in jax.eval_shape(tiny_vit(pos_embed="sincos").init, KEY, x)["params"]
    with pytest.raises(ValueError, match="pos_embed"):
        jax.eval_shape(tiny_vit(pos_embed="rope").init, KEY, x)


# ---------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------


def test_patch_embed_is_a_linear_map_of_row_major_patches(rng):
    x = images(rng, (16, 24), batch=1)
    module = PatchEmbed(patch_size=8, embed_dim=5)
    params = module.init(KEY, x)["params"]["proj"]
    tokens = module.apply({"params": {"proj": params}}, x)
    assert tokens.shape == (1, 6, 5)
    weight = np.asarray(params["kernel"]).reshape(-1, 5)  # (row, column, channel) order
    for row in range(2):
        for col in range(3):
            patch = np.asarray(x[0, 8 * row:8 * row + 8, 8 * col:8 * col + 8]).reshape(-1)
            np.testing.assert_allclose(tokens[0, 3 * row + col], patch @ weight
                                       + params["bias"], atol=1e-5)


def test_patch_embedding_as_a_matmul_equals_the_convolution(rng):
    """The CPU patch embedding (patches times the flattened kernel) gives lax's outputs
    and both gradients, leftover pixels at the bottom/right ignored."""
    x = jnp.asarray(rng.standard_normal((3, 19, 26, 3)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((8, 8, 3, 5)), jnp.float32)
    for padding in ("VALID", ((0, 0), (0, 0))):
        lowered = assert_conv_equals_lax(layers.patch_conv, x, w, (8, 8), padding)
        assert "stablehlo.convolution" not in lowered


def test_initialisation(params):
    kernel = params["patch_embed"]["proj"]["kernel"]  # [8, 8, 3, 32]
    bound = math.sqrt(6 / (8 * 8 * 3 + 32))  # xavier over the flattened [192, 32] kernel
    assert 0.9 * bound < float(jnp.abs(kernel).max()) <= bound
    qkv = params["blocks_0"]["attn"]["qkv"]
    bound = math.sqrt(6 / (32 + 96))
    assert 0.9 * bound < float(jnp.abs(qkv["kernel"]).max()) <= bound
    assert not jnp.any(qkv["bias"]) and not jnp.any(params["patch_embed"]["proj"]["bias"])
    np.testing.assert_array_equal(params["norm"]["scale"], 1.0)
    for name in ("cls_token", "pos_embed"):
        assert 0.01 < float(jnp.std(params[name])) < 0.03


def test_layers_and_attention(rng):
    model = tiny_vit(depth=3)
    x = images(rng, 32)
    variables = model.init(KEY, x)
    out = model.apply(variables, x, return_layers=(0, -1), return_attention=True)
    assert [layer.shape for layer in out["layers"]] == [(2, 17, 32)] * 2
    # Intermediate layers go through the final norm (DINO): the last one is the output.
    np.testing.assert_allclose(out["layers"][1][:, 0], out["cls"], atol=1e-6)
    np.testing.assert_allclose(out["layers"][1][:, 1:], out["patch_tokens"], atol=1e-6)
    assert not np.allclose(out["layers"][0], out["layers"][1], atol=1e-3)
    attention = out["attention"]
    assert attention.shape == (2, 2, 17, 17) and attention.dtype == jnp.float32
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    assert jnp.all(attention >= 0)
    with pytest.raises(ValueError, match="out of range"):
        model.apply(variables, x, return_layers=(3,))


def test_block_returns_attention(rng):
    x = jnp.asarray(rng.normal(size=(2, 5, 12)), jnp.float32)
    block = Block(num_heads=3)
    variables = jax.jit(block.init)(KEY, x)
    y, attention = block.apply(variables, x, return_attention=True)
    assert y.shape == x.shape and attention.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(block.apply(variables, x), y)


def test_patch_ids_select_visible_patches(rng, params):
    """Attention is permutation-equivariant and the position embedding is added before
    the gather: a permutation of all patches permutes the patch tokens."""
    model = tiny_vit()
    x = images(rng, 32)
    variables = {"params": params}
    perm = jnp.asarray(np.stack([rng.permutation(16) for _ in range(2)]), jnp.int32)
    full = model.apply(variables, x)
    permuted = model.apply(variables, x, patch_ids=perm)
    np.testing.assert_allclose(permuted["patch_tokens"],
                               jnp.take_along_axis(full["patch_tokens"], perm[..., None], 1),
                               atol=1e-5)
    np.testing.assert_allclose(permuted["cls"], full["cls"], atol=1e-5)
    assert model.apply(variables, x, patch_ids=perm[:, :5])["patch_tokens"].shape == (2, 5, 32)


def test_padding_of_patch_ids_is_masked_out_and_no_class_token_pools_the_patches(rng):
    """``patch_mask``: padded patch ids change nothing in the real tokens' outputs.
    ``class_token=False`` (I-JEPA): no CLS parameter, ``cls`` the mean patch token."""
    model = tiny_vit(class_token=False, pos_embed="sincos")
    x = images(rng, 32)
    variables = jax.jit(model.init)(KEY, x)
    assert "cls_token" not in variables["params"]
    full = model.apply(variables, x)
    np.testing.assert_allclose(full["cls"], full["patch_tokens"].mean(axis=1), atol=1e-6)
    ids = jnp.asarray(np.stack([np.sort(rng.permutation(16)[:6]) for _ in range(2)]))
    real = model.apply(variables, x, patch_ids=ids)["patch_tokens"]
    padded = model.apply(variables, x, patch_ids=jnp.pad(ids, ((0, 0), (0, 3))),
                         patch_mask=jnp.arange(9)[None].repeat(2, 0) < 6)["patch_tokens"]
    np.testing.assert_allclose(padded[:, :6], real, atol=1e-5)


def test_drop_path_drops_whole_samples(rng):
    x = jnp.asarray(rng.normal(size=(64, 3, 4)) + 5.0, jnp.float32)
    y = drop_path(x, 0.25, KEY)
    dropped = np.all(np.asarray(y) == 0, axis=(1, 2))
    np.testing.assert_allclose(y[~dropped], x[~dropped] / 0.75, rtol=1e-6)
    assert 0 < dropped.sum() < 64


def test_drop_path_only_in_training(rng, params):
    x = images(rng, 32, batch=4)
    model = tiny_vit(drop_path_rate=0.5)
    variables = {"params": params}
    plain = tiny_vit().apply(variables, x)["patch_tokens"]
    np.testing.assert_array_equal(model.apply(variables, x)["patch_tokens"], plain)
    train = [model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(i)})
             ["patch_tokens"] for i in range(2)]
    assert not np.allclose(train[0], train[1])
    assert not np.allclose(train[0], plain)


def test_bfloat16_compute_keeps_float32_params(rng, params):
    x = images(rng, 32)
    model = tiny_vit(dtype=jnp.bfloat16)
    shapes = jax.eval_shape(model.init, KEY, x)
    assert {leaf.dtype for leaf in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
    variables = {"params": params}
    out = model.apply(variables, x, return_attention=True)
    assert out["patch_tokens"].dtype == jnp.bfloat16
    assert out["attention"].dtype == jnp.float32
    reference = tiny_vit().apply(variables, x)["patch_tokens"]
    np.testing.assert_allclose(out["patch_tokens"].astype(jnp.float32), reference, atol=0.1)


def test_gradients_reach_every_parameter(rng, params):
    x = images(rng, 32)
    model = tiny_vit()
    weights = jnp.asarray(rng.normal(size=(2, 17, 32)), jnp.float32)

    def loss(params):
        out = model.apply({"params": params}, x)
        tokens = jnp.concatenate([out["cls"][:, None], out["patch_tokens"]], axis=1)
        return jnp.sum(tokens * weights)

    grads = jax.jit(jax.grad(loss))(params)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert float(jnp.abs(grad).max()) > 0, jax.tree_util.keystr(path)


def test_mask_token_replaces_the_masked_patch_embeddings(rng, params):
    """iBOT/DINOv2: the mask token (zeros at init) stands in for a masked patch's
    embedding, before the position embedding; without a mask the ViT is the plain one."""
    vit = tiny_vit(mask_token=True)
    x = images(rng, 32)
    variables = {"params": {**params, "mask_token": jnp.asarray(rng.normal(size=(1, 32)),
                                                                jnp.float32)}}
    np.testing.assert_allclose(vit.apply(variables, x)["cls"],
                               tiny_vit().apply({"params": params}, x)["cls"], atol=1e-6)
    mask = np.zeros((2, 16), bool)
    mask[:, [0, 5, 6]] = True
    got = vit.apply(variables, x, mask=jnp.asarray(mask))["cls"]
    masked_patch_changed = x.at[:, :8, :8].set(0.0)  # patch 0
    np.testing.assert_allclose(vit.apply(variables, masked_patch_changed,
                                         mask=jnp.asarray(mask))["cls"], got, atol=1e-6)
    visible_patch_changed = x.at[:, :8, 8:16].set(0.0)  # patch 1
    assert not np.allclose(vit.apply(variables, visible_patch_changed,
                                     mask=jnp.asarray(mask))["cls"], got, atol=1e-4)
    # all masked: nothing of the image is left, yet the tokens differ by position
    everything = vit.apply(variables, x, mask=jnp.ones((2, 16), bool))
    np.testing.assert_allclose(everything["patch_tokens"][0], everything["patch_tokens"][1],
                               atol=1e-6)
    assert not np.allclose(everything["patch_tokens"][0, 0], everything["patch_tokens"][0, 1])
    init = jax.jit(vit.init)(KEY, jnp.zeros((1, 32, 32, 3)))["params"]
    np.testing.assert_array_equal(init["mask_token"], np.zeros((1, 32)))
    with pytest.raises(ValueError, match="mask_token=True"):
        tiny_vit().apply({"params": params}, x, mask=jnp.asarray(mask))
    with pytest.raises(ValueError, match=r"mask must be \[B, L\]"):
        vit.apply(variables, x, mask=jnp.ones((2, 4), bool))


def test_layer_scale_scales_each_branch_by_its_gamma(rng):
    """gamma starts at layer_scale; gammas of 1 give the plain block, of 0 the identity."""
    x = jnp.asarray(rng.normal(size=(2, 5, 32)), jnp.float32)
    block = Block(num_heads=2, layer_scale=1e-5)
    params = jax.jit(block.init)(KEY, x)["params"]
    np.testing.assert_array_equal(params["ls1_gamma"], np.full(32, 1e-5, np.float32))
    plain = {k: v for k, v in params.items() if not k.endswith("_gamma")}

    def with_gammas(value):
        return {"params": {**params, "ls1_gamma": jnp.full(32, value),
                           "ls2_gamma": jnp.full(32, value)}}
    np.testing.assert_allclose(block.apply(with_gammas(1.0), x),
                               Block(num_heads=2).apply({"params": plain}, x), atol=1e-6)
    np.testing.assert_array_equal(block.apply(with_gammas(0.0), x), x)


def test_swiglu_ffn_rounds_its_hidden_width_as_dinov2():
    shapes = jax.eval_shape(Block(num_heads=6, ffn="swiglu").init, KEY, jnp.zeros((1, 3, 384)))
    assert shapes["params"]["mlp"]["w12"]["kernel"].shape == (384, 2048)  # h = 1024
    assert shapes["params"]["mlp"]["w3"]["kernel"].shape == (1024, 384)
    with pytest.raises(ValueError, match="ffn must be one of"):
        Block(num_heads=2, ffn="geglu").init(KEY, jnp.zeros((1, 3, 32)))


def test_registers_join_the_sequence_but_no_output(rng):
    vit = tiny_vit(num_registers=3)
    x = images(rng, 32)
    variables = jax.jit(vit.init)(KEY, x)
    assert variables["params"]["register_tokens"].shape == (1, 3, 32)
    out = vit.apply(variables, x, return_layers=(0,), return_attention=True)
    assert out["patch_tokens"].shape == (2, 16, 32) and out["layers"][0].shape == (2, 17, 32)
    assert out["attention"].shape == (2, 2, 20, 20)
    # they take part in attention: other register values, another CLS output
    moved = {"params": {**variables["params"],
                        "register_tokens": jnp.asarray(rng.normal(size=(1, 3, 32)),
                                                       jnp.float32)}}
    assert not np.allclose(vit.apply(moved, x)["cls"], out["cls"], atol=1e-4)
