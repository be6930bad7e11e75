"""Projection heads, DINO's head and SwAV's prototypes (jax_ssl.models.heads)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from jax.sharding import PartitionSpec as P

from jax_ssl import parallel
from jax_ssl.models import heads

KEY = jax.random.key(0)


def _shapes(tree):
    """{'layer/param': shape} of a variables collection."""
    return {"/".join(k): tuple(v.shape) for k, v in traverse_util.flatten_dict(tree).items()}


def _abstract_params(module, in_dim):
    """Parameter shapes without allocating them (official heads are large)."""
    x = jax.ShapeDtypeStruct((2, in_dim), jnp.float32)
    return jax.eval_shape(lambda x: module.init(KEY, x, train=False), x)["params"]


def _bn(dim, scale=True, bias=True):
    return {name: (dim,) for name, keep in (("scale", scale), ("bias", bias)) if keep}


def _layers(**layers):
    return {f"{name}/{p}": s for name, ps in layers.items() for p, s in ps.items()}


@pytest.mark.parametrize("head, in_dim, expected", [
    (heads.simclr_projector(), 2048, _layers(
        linear_0={"kernel": (2048, 2048)}, bn_0=_bn(2048),
        linear_1={"kernel": (2048, 2048)}, bn_1=_bn(2048),
        linear_2={"kernel": (2048, 128)}, bn_2=_bn(128, bias=False))),
    (heads.moco_v3_projector(), 768, _layers(
        linear_0={"kernel": (768, 4096)}, bn_0=_bn(4096),
        linear_1={"kernel": (4096, 4096)}, bn_1=_bn(4096),
        linear_2={"kernel": (4096, 256)})),
    (heads.moco_v3_projector(num_layers=2), 2048, _layers(
        linear_0={"kernel": (2048, 4096)}, bn_0=_bn(4096),
        linear_1={"kernel": (4096, 256)})),
    (heads.moco_v3_predictor(), 256, _layers(
        linear_0={"kernel": (256, 4096)}, bn_0=_bn(4096),
        linear_1={"kernel": (4096, 256)})),
    (heads.byol_mlp(), 2048, _layers(
        linear_0={"kernel": (2048, 4096)}, bn_0=_bn(4096),
        linear_1={"kernel": (4096, 256)})),
    (heads.barlow_twins_projector(), 2048, _layers(
        linear_0={"kernel": (2048, 8192)}, bn_0=_bn(8192),
        linear_1={"kernel": (8192, 8192)}, bn_1=_bn(8192),
        linear_2={"kernel": (8192, 8192)})),
    (heads.swav_projector(), 2048, _layers(
        linear_0={"kernel": (2048, 2048)}, bn_0=_bn(2048),
        linear_1={"kernel": (2048, 128), "bias": (128,)})),
], ids=["simclr", "moco_v3_vit", "moco_v3_resnet", "moco_v3_pred", "byol", "barlow",
        "swav"])
def test_official_heads_have_the_official_layers(head, in_dim, expected):
    assert _shapes(_abstract_params(head, in_dim)) == expected
    out = jax.eval_shape(
        lambda x: head.apply(head.init(KEY, x, train=False), x, train=False),
        jax.ShapeDtypeStruct((2, in_dim), jnp.float32))
    assert out.shape == (2, expected[f"linear_{len(head.hidden_dims)}/kernel"][1])


@pytest.mark.parametrize("head, std", [
    (heads.simclr_projector(hidden_dim=256), 0.01),  # TF RandomNormal(0.01)
    (heads.byol_mlp(hidden_dim=256), 0.8796 / 16),  # Haiku: N(1/√fan_in) cut at ±2σ
    (heads.moco_v3_projector(hidden_dim=256), 1 / np.sqrt(3 * 256)),  # torch U(±1/√fan_in)
], ids=["simclr", "byol", "moco_v3"])
def test_official_weight_initialisation(head, std):
    x = np.zeros((2, 256), np.float32)
    kernel = head.init(KEY, x, train=False)["params"]["linear_0"]["kernel"]
    np.testing.assert_allclose(np.std(kernel), std, rtol=0.03)


def test_vicreg_projector_is_barlow_twins_architecture():
    assert heads.vicreg_projector() == heads.barlow_twins_projector()


def test_moco_v3_last_bn_has_statistics_but_no_affine_parameters(rng):
    head = heads.moco_v3_projector(hidden_dim=8, output_dim=4)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    variables = head.init(KEY, x, train=False)
    assert "bn_2" not in variables["params"]
    assert _shapes(variables["batch_stats"]["bn_2"]) == {"mean": (4,), "var": (4,)}
    out, _ = head.apply(variables, x, train=True, mutable=["batch_stats"])
    # BN without affine: zero mean, unit (biased) variance per feature
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(0), 1, rtol=1e-3)


def test_mlp_without_hidden_layers_is_one_linear(rng):
    mlp = heads.MLP(hidden_dims=(), output_dim=3, use_bn=False)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    variables = mlp.init(KEY, x, train=False)
    p = variables["params"]["linear_0"]
    np.testing.assert_allclose(mlp.apply(variables, x, train=False),
                               x @ p["kernel"] + p["bias"], rtol=1e-5, atol=1e-6)


def test_bn_statistics_are_global_under_shard_map(rng):
    mesh = parallel.data_mesh()
    x = (rng.normal(size=(16, 6)) * 3 + rng.normal(size=6)).astype(np.float32)
    local = heads.MLP(hidden_dims=(8,), output_dim=4, last_bn=True)
    synced = local.clone(axis_name=parallel.DATA_AXIS)
    variables = local.init(KEY, x, train=False)

    def step(module, variables, x):
        return module.apply(variables, x, train=True, mutable=["batch_stats"])

    want, want_state = step(local, variables, x)
    got, got_state = jax.jit(jax.shard_map(
        lambda v, x: step(synced, v, x), mesh=mesh, in_specs=(P(), P(parallel.DATA_AXIS)),
        out_specs=(P(parallel.DATA_AXIS), P())))(variables, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 got_state, want_state)
    # the per-device statistics differ: the equality above needs the cross-device mean
    _, first_device_state = step(local, variables, x[:2])
    assert not np.allclose(first_device_state["batch_stats"]["bn_0"]["mean"],
                           want_state["batch_stats"]["bn_0"]["mean"])


def _tiny_dino(**kw):
    return heads.DINOHead(out_dim=32, hidden_dim=16, bottleneck_dim=8, **kw)


def test_dino_last_layer_weight_vectors_have_unit_norm(rng):
    head = _tiny_dino()
    x = rng.normal(size=(5, 12)).astype(np.float32)
    params = head.init(KEY, x, train=False)["params"]
    assert _shapes(params["last_layer"]) == {"kernel": (8, 32)}
    # effective weight matrix: the last layer applied to the unit vectors
    weight = heads.WeightNormDense(32).apply({"params": params["last_layer"]}, np.eye(8))
    np.testing.assert_allclose(np.linalg.norm(weight, axis=0), 1, rtol=1e-5)
    # so rescaling the stored weight vectors changes nothing
    scaled = {**params, "last_layer": {
        "kernel": params["last_layer"]["kernel"] * rng.uniform(0.1, 10, size=32)}}
    np.testing.assert_allclose(head.apply({"params": scaled}, x, train=False),
                               head.apply({"params": params}, x, train=False), rtol=1e-5,
                               atol=1e-6)


def test_dino_trainable_gain_when_last_layer_is_not_normalised(rng):
    head = _tiny_dino(norm_last_layer=False)
    x = rng.normal(size=(5, 12)).astype(np.float32)
    last = head.init(KEY, x, train=False)["params"]["last_layer"]
    np.testing.assert_array_equal(last["scale"], np.ones(32))  # weight_g filled with 1
    gain = rng.uniform(0.5, 2, size=32).astype(np.float32)
    weight = heads.WeightNormDense(32, learn_scale=True).apply(
        {"params": {**last, "scale": gain}}, np.eye(8))
    np.testing.assert_allclose(np.linalg.norm(weight, axis=0), gain, rtol=1e-5)


@pytest.mark.parametrize("learn_scale", [False, True])
def test_weight_norm_dense_values_and_gradients_equal_the_normalised_kernel(learn_scale, rng):
    """Scaling the output by g/‖v‖ (what the layer does) is x·(g ⊙ v/‖v‖) (what
    torch.nn.utils.weight_norm computes), gradients included."""
    x = rng.normal(size=(5, 8)).astype(np.float32)
    layer = heads.WeightNormDense(32, learn_scale=learn_scale)
    params = layer.init(KEY, x)["params"]
    if learn_scale:
        params = {**params, "scale": rng.uniform(0.5, 2, size=32).astype(np.float32)}
    weights = rng.normal(size=(5, 32)).astype(np.float32)

    def reference(p):
        w = p["kernel"] / jnp.linalg.norm(p["kernel"], axis=0) * p.get("scale", 1.0)
        return jnp.sum((x @ w) * weights)

    got = jax.value_and_grad(lambda p: jnp.sum(layer.apply({"params": p}, x) * weights))(params)
    want = jax.value_and_grad(reference)(params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dino_bottleneck_features_have_unit_norm(rng):
    head = heads.DINOHead(out_dim=8, hidden_dim=16, bottleneck_dim=8)
    x = (100 * rng.normal(size=(5, 12))).astype(np.float32)
    params = head.init(KEY, x, train=False)["params"]
    # an identity last layer (unit columns already) returns the normalised bottleneck
    params = {**params, "last_layer": {"kernel": jnp.eye(8)}}
    out = head.apply({"params": params}, x, train=False)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1, rtol=1e-5)


def test_dino_head_parameter_count_matches_the_official():
    # official DINOHead(384, 65536) on ViT-S/16: 22,286,592 trainable (+ 65,536 frozen g)
    count = sum(np.prod(s) for s in _shapes(_abstract_params(heads.DINOHead(), 384)).values())
    assert count == 384 * 2048 + 2048 + 2048 * 2048 + 2048 + 2048 * 256 + 256 + 256 * 65536
    assert count == 22_286_592
    params = _abstract_params(heads.DINOHead(norm_last_layer=False), 384)
    assert sum(np.prod(s) for s in _shapes(params).values()) == 22_286_592 + 65_536


def test_dino_head_single_layer_and_bn_layout():
    assert _shapes(_abstract_params(_tiny_dino(num_layers=1), 12)) == _layers(
        mlp_0={"kernel": (12, 8), "bias": (8,)}, last_layer={"kernel": (8, 32)})
    assert _shapes(_abstract_params(_tiny_dino(use_bn=True), 12)) == _layers(
        mlp_0={"kernel": (12, 16)}, bn_0=_bn(16), mlp_1={"kernel": (16, 16)}, bn_1=_bn(16),
        mlp_2={"kernel": (16, 8), "bias": (8,)}, last_layer={"kernel": (8, 32)})


def test_normalized_prototypes_are_unit_vectors(rng):
    protos = heads.Prototypes(num_prototypes=7)
    params = protos.init(KEY, np.zeros((1, 5), np.float32))["params"]
    assert _shapes(params) == {"kernel": (5, 7)}
    params = heads.normalize_prototypes(params)
    np.testing.assert_allclose(np.linalg.norm(params["kernel"], axis=0), 1, rtol=1e-6)
    # each prototype vector scores 1 against itself: scores are cosine similarities
    scores = protos.apply({"params": params}, params["kernel"].T)
    np.testing.assert_allclose(np.diag(scores), 1, rtol=1e-6)
    again = heads.normalize_prototypes(params)
    np.testing.assert_allclose(again["kernel"], params["kernel"], rtol=1e-6)


GRAD_CASES = {
    "simclr": heads.simclr_projector(hidden_dim=8, output_dim=4),
    "moco_v3": heads.moco_v3_projector(hidden_dim=8, output_dim=4),
    "swav": heads.swav_projector(hidden_dim=8, output_dim=4),
    "dino": _tiny_dino(),
    "dino_bn_gain": _tiny_dino(use_bn=True, norm_last_layer=False),
}


@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradients_reach_every_parameter(name, rng):
    head = GRAD_CASES[name]
    x = rng.normal(size=(6, 12)).astype(np.float32)
    variables = head.init(KEY, x, train=False)
    weights = rng.normal(size=head.apply(variables, x, train=False).shape)

    def loss(params):
        out, _ = head.apply({**variables, "params": params}, x, train=True,
                            mutable=["batch_stats"])
        return jnp.sum(out * weights)

    grads = traverse_util.flatten_dict(jax.grad(loss)(variables["params"]))
    assert all(np.abs(g).max() > 1e-6 for g in grads.values()), {
        k: float(np.abs(g).max()) for k, g in grads.items()}


def test_prototype_gradients(rng):
    protos = heads.Prototypes(num_prototypes=7)
    z = rng.normal(size=(4, 5)).astype(np.float32)
    params = protos.init(KEY, z)["params"]
    grad = jax.grad(lambda p: jnp.sum(protos.apply({"params": p}, z) ** 2))(params)
    assert np.all(np.abs(grad["kernel"]) > 0)


@pytest.mark.parametrize("head", [
    heads.MLP(hidden_dims=(8,), output_dim=4, last_bn=True, dtype=jnp.bfloat16),
    _tiny_dino(use_bn=True, dtype=jnp.bfloat16),
], ids=["mlp", "dino"])
def test_bfloat16_compute_keeps_float32_parameters(head, rng):
    x = rng.normal(size=(6, 12)).astype(np.float32)
    variables = head.init(KEY, x, train=False)
    out, state = head.apply(variables, x, train=True, mutable=["batch_stats"])
    assert out.dtype == jnp.bfloat16
    leaves = jax.tree.leaves({**variables, **state})
    assert leaves and all(leaf.dtype == jnp.float32 for leaf in leaves)


def test_prototypes_bfloat16(rng):
    protos = heads.Prototypes(num_prototypes=7, dtype=jnp.bfloat16)
    z = rng.normal(size=(4, 5)).astype(np.float32)
    params = protos.init(KEY, z)["params"]
    assert params["kernel"].dtype == jnp.float32
    assert protos.apply({"params": params}, z).dtype == jnp.bfloat16


@pytest.mark.parametrize("shared", [False, True])
def test_ibot_head_is_dino_head_on_cls_and_its_patch_layer_on_patches(shared, rng):
    """The CLS output is DINOHead's on the same parameters; the patches go through the
    same MLP and ``last_layer2`` (or ``last_layer`` when shared, or in the teacher that
    projects them with its CLS layer)."""
    kwargs = dict(out_dim=12, hidden_dim=16, bottleneck_dim=8)
    head = heads.IBOTHead(patch_out_dim=12, shared_head=shared, **kwargs)
    tokens = jnp.asarray(rng.normal(size=(3, 5, 6)), jnp.float32)
    params = jax.jit(lambda t: head.init(jax.random.key(0), t, train=True))(tokens)
    assert ("last_layer2" in params["params"]) == (not shared)
    cls, patches = head.apply(params, tokens, train=True)
    dino = heads.DINOHead(**kwargs)
    dino_params = {"params": {k: v for k, v in params["params"].items() if k != "last_layer2"}}
    np.testing.assert_allclose(cls, dino.apply(dino_params, tokens[:, 0], train=True),
                               atol=1e-6)
    through_cls_layer = dino.apply(dino_params, tokens[:, 1:], train=True)
    assert patches.shape == (3, 4, 12)
    assert np.allclose(patches, through_cls_layer, atol=1e-6) == shared
    teacher = heads.IBOTHead(patch_out_dim=12, shared_head=shared,
                             patches_through_last_layer=True, **kwargs)
    np.testing.assert_allclose(teacher.apply(params, tokens, train=True)[1], through_cls_layer,
                               atol=1e-6)
