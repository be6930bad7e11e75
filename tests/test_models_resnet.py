"""ResNet backbones (jax_ssl.models.resnet): torchvision's layout, sizes and BN semantics."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from jax.sharding import PartitionSpec as P

from jax_ssl import parallel
from jax_ssl.models import layers, resnet

# rbg rather than threefry: a ResNet's init then compiles in ~1 s instead of ~5 s on CPU.
KEY = jax.random.key(0, impl="rbg")
EPS = 1e-5


def _flat(tree):
    return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def _abstract_variables(model, size=224):
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(KEY, x, train=False), x)


def _init(model, size):
    x = jnp.zeros((2, size, size, 3), jnp.float32)
    return jax.jit(functools.partial(model.init, train=False))(KEY, x)


def _random_variables(model, rng, dtype=np.float32):
    """Variables drawn with NumPy (no init to compile): kaiming-scaled kernels, and BN
    affine parameters and running statistics away from their initial 1/0 values."""
    def draw(path, v):
        name = path[-1].key
        if name == "kernel":
            return rng.normal(0.0, np.sqrt(2.0 / np.prod(v.shape[:2]) / v.shape[-1]), v.shape)
        if name == "scale":
            return rng.uniform(0.5, 1.5, v.shape)
        if name in ("bias", "mean"):
            return rng.normal(0.0, 0.3, v.shape)
        assert name == "var", path
        return rng.uniform(0.5, 2.0, v.shape)
    return jax.tree_util.tree_map_with_path(
        lambda path, v: draw(path, v).astype(dtype), _abstract_variables(model, 32))


def _train_apply(model):
    return jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))


# --- A float64 NumPy transcription of torchvision's ResNet.forward --------------------


def _conv_ref(x, kernel, stride, pad):
    """torch.nn.Conv2d(bias=False, padding=pad): zero padding on both sides."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = kernel.shape[0]
    ho, wo = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = 0.0
    for i in range(k):
        for j in range(k):
            window = x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            out = out + window @ kernel[i, j]
    return out


def _max_pool_ref(x):
    """torch.nn.MaxPool2d(kernel_size=3, stride=2, padding=1): pads with -inf."""
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    ho, wo = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    return np.max([x[:, i:i + 2 * ho - 1:2, j:j + 2 * wo - 1:2]
                   for i in range(3) for j in range(3)], axis=0)


class _RefResNet:
    """torchvision's forward with NumPy; ``new_stats`` collects the running averages."""

    def __init__(self, variables, bottleneck, cifar_stem, train):
        self.p = variables["params"]
        self.s = variables["batch_stats"]
        self.bottleneck, self.cifar_stem, self.train = bottleneck, cifar_stem, train
        self.new_stats = {}

    def bn(self, x, path):
        p, s = self.p, self.s
        for name in path:
            p, s = p[name], s[name]
        if self.train:
            # Biased variance: torch normalises with it; Flax also tracks it in the
            # running average, where torch tracks the unbiased one (see resnet.py).
            mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
            self.new_stats["/".join(path)] = (0.9 * s["mean"] + 0.1 * mean,
                                              0.9 * s["var"] + 0.1 * var)
        else:
            mean, var = s["mean"], s["var"]
        return (x - mean) / np.sqrt(var + EPS) * p["scale"] + p["bias"]

    def conv(self, x, path, k, features, stride):
        """torchvision's conv1x1 / conv3x3 / 7×7 stem: padding k // 2, no bias."""
        p = self.p
        for name in path:
            p = p[name]
        assert p["kernel"].shape == (k, k, x.shape[-1], features), path
        return _conv_ref(x, p["kernel"], stride, k // 2)

    def block(self, x, name, planes, stride):
        relu = functools.partial(np.maximum, 0.0)
        if self.bottleneck:
            expected = {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3"}
            out = relu(self.bn(self.conv(x, (name, "conv1"), 1, planes, 1), (name, "bn1")))
            out = relu(self.bn(self.conv(out, (name, "conv2"), 3, planes, stride),
                               (name, "bn2")))
            out = self.bn(self.conv(out, (name, "conv3"), 1, 4 * planes, 1), (name, "bn3"))
        else:
            expected = {"conv1", "bn1", "conv2", "bn2"}
            out = relu(self.bn(self.conv(x, (name, "conv1"), 3, planes, stride), (name, "bn1")))
            out = self.bn(self.conv(out, (name, "conv2"), 3, planes, 1), (name, "bn2"))
        if stride != 1 or x.shape[-1] != out.shape[-1]:
            expected |= {"downsample_conv", "downsample_bn"}
            identity = self.bn(self.conv(x, (name, "downsample_conv"), 1, out.shape[-1], stride),
                               (name, "downsample_bn"))
        else:
            identity = x
        assert set(self.p[name]) == expected, name
        return relu(out + identity)

    def __call__(self, x, stage_sizes, width):
        if self.cifar_stem:
            x = self.conv(x, ("conv1",), 3, width, 1)
        else:
            x = self.conv(x, ("conv1",), 7, width, 2)
        x = np.maximum(self.bn(x, ("bn1",)), 0.0)
        if not self.cifar_stem:
            x = _max_pool_ref(x)
        for i, n in enumerate(stage_sizes):
            for j in range(n):
                x = self.block(x, f"layer{i + 1}_{j}", width * 2 ** i,
                               2 if i > 0 and j == 0 else 1)
        return x


# --- Tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, count, features", [
    ("resnet18", 11_176_512, 512), ("resnet34", 21_284_672, 512),
    ("resnet50", 23_508_032, 2048), ("resnet101", 42_500_160, 2048)])
def test_parameter_count_equals_torchvision_without_fc(name, count, features):
    model = resnet.RESNETS[name]()
    variables = _abstract_variables(model)
    assert set(variables) == {"params", "batch_stats"}
    assert sum(v.size for v in jax.tree.leaves(variables["params"])) == count
    assert model.num_features == features
    # One BN per residual branch and shortcut: every BN has scale, bias, mean and var.
    bn_params = {k.rsplit("/", 1)[0] for k in _flat(variables["params"]) if "bn" in k}
    assert bn_params == {k.rsplit("/", 1)[0] for k in _flat(variables["batch_stats"])}


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("size", [32, 96, 224])
@pytest.mark.parametrize("cifar_stem", [False, True], ids=["imagenet_stem", "cifar_stem"])
def test_output_shapes(name, size, cifar_stem):
    model = resnet.RESNETS[name](cifar_stem=cifar_stem)
    variables = _abstract_variables(model, size)
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    pooled, fmap = jax.eval_shape(
        lambda v, x: (model.apply(v, x, train=False),
                      model.apply(v, x, train=False, return_feature_map=True)), variables, x)
    final = size // 8 if cifar_stem else -(-size // 32)
    assert pooled.shape == (2, model.num_features) and pooled.dtype == jnp.float32
    assert fmap.shape == (2, final, final, model.num_features)


def test_stage_widths_and_shortcuts():
    model = resnet.resnet50()
    shapes = _flat(jax.tree.map(lambda v: v.shape, _abstract_variables(model)["params"]))
    assert shapes["conv1/kernel"] == (7, 7, 3, 64)
    cifar = _flat(jax.tree.map(lambda v: v.shape,
                               _abstract_variables(resnet.resnet50(cifar_stem=True))["params"]))
    assert cifar["conv1/kernel"] == (3, 3, 3, 64)
    assert set(cifar) == set(shapes)
    # Bottleneck widths per stage, a shortcut conv only in each stage's first block (the
    # strides are checked against the transcription below).
    for stage, width in zip(range(1, 5), (64, 128, 256, 512), strict=True):
        assert shapes[f"layer{stage}_0/conv2/kernel"] == (3, 3, width, width)
        assert shapes[f"layer{stage}_0/conv3/kernel"] == (1, 1, width, 4 * width)
        assert shapes[f"layer{stage}_0/downsample_conv/kernel"][-1] == 4 * width
        assert f"layer{stage}_1/downsample_conv/kernel" not in shapes
    assert "layer1_0/downsample_conv/kernel" not in _flat(
        _abstract_variables(resnet.resnet18())["params"])


@pytest.mark.parametrize("name, cifar_stem, size", [("resnet18", False, 40),
                                                    ("resnet50", True, 10)])
def test_forward_matches_torchvision_transcription(name, cifar_stem, size, rng):
    # Narrow (width 4) but every block: padding, strides, shortcuts and BN in both modes
    # against an independent float64 transcription of torchvision's forward.
    model = resnet.RESNETS[name](cifar_stem=cifar_stem, width=4)
    variables = _random_variables(model, rng, np.float64)
    x = rng.normal(size=(4, size, size, 3))

    def forward(v, x):
        v = jax.tree.map(lambda a: a.astype(jnp.float32), v)
        return (model.apply(v, x, train=False, return_feature_map=True),
                model.apply(v, x, train=True, return_feature_map=True,
                            mutable=["batch_stats"]))

    got_eval, (got_train, new) = jax.jit(forward)(variables, x.astype(np.float32))
    bottleneck = model.block_cls is resnet.Bottleneck
    for train, got in ((False, got_eval), (True, got_train)):
        ref = _RefResNet(variables, bottleneck, cifar_stem, train)
        want = ref(x, model.stage_sizes, model.width)
        # Train mode divides by batch deviations of a few values in the last stages,
        # which magnifies float32 rounding.
        np.testing.assert_allclose(got, want, rtol=1e-3 if train else 1e-4,
                                   atol=(1e-4 if train else 1e-5) * np.abs(want).max(),
                                   err_msg=f"train={train}")
    # Running averages: 0.9·old + 0.1·batch (torch's momentum 0.1), biased variance.
    new = _flat(new["batch_stats"])
    assert set(new) == {f"{k}/{s}" for k in ref.new_stats for s in ("mean", "var")}
    for path, (mean, var) in ref.new_stats.items():
        np.testing.assert_allclose(new[f"{path}/mean"], mean, rtol=1e-4, atol=1e-5,
                                   err_msg=path)
        np.testing.assert_allclose(new[f"{path}/var"], var, rtol=1e-4, err_msg=path)


def test_eval_mode_is_per_image_and_pools_the_feature_map(rng):
    model = resnet.resnet18(cifar_stem=True, width=4)
    variables = _random_variables(model, rng)
    x = jnp.asarray(rng.normal(size=(4, 16, 16, 3)), jnp.float32)
    # No mutable collection needed: the running statistics are only read.
    evaluate = jax.jit(lambda v, x: (model.apply(v, x, train=False),
                                     model.apply(v, x, train=False, return_feature_map=True)))
    pooled, fmap = evaluate(variables, x)
    np.testing.assert_allclose(pooled, fmap.mean((1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(evaluate(variables, x[:1])[0], pooled[:1], rtol=1e-5, atol=1e-6)


def _per_device_train_step(model, mesh):
    """Train-mode apply on each device's shard; batch statistics returned per device."""
    def step(variables, x):
        out, new = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return out, jax.tree.map(lambda v: v[None], new["batch_stats"])
    return jax.jit(parallel.shard_over_data(step, mesh, in_specs=(P(), parallel.BATCH_SPEC),
                                            out_specs=(parallel.BATCH_SPEC,) * 2))


def test_sync_batch_norm_equals_global_batch_statistics(rng):
    mesh = parallel.data_mesh()
    devices = mesh.devices.size
    local = resnet.resnet18(cifar_stem=True, width=8)
    synced = resnet.resnet18(cifar_stem=True, width=8, axis_name=parallel.DATA_AXIS)
    x = jnp.asarray(rng.normal(size=(2 * devices, 8, 8, 3)), jnp.float32)
    variables = _random_variables(local, rng)
    # Zero running statistics: the updated ones are then exactly 0.1 × the batch's.
    variables["batch_stats"] = jax.tree.map(np.zeros_like, variables["batch_stats"])

    want_out, want = _train_apply(local)(variables, x)
    want = _flat(want["batch_stats"])

    out, stats = _per_device_train_step(synced, mesh)(variables, x)
    np.testing.assert_allclose(out, want_out, rtol=1e-4, atol=1e-5)
    stats = _flat(stats)
    assert set(stats) == set(want)
    for path, got in stats.items():
        assert got.shape == (devices, *want[path].shape)
        np.testing.assert_allclose(got, np.broadcast_to(want[path], got.shape), rtol=1e-5,
                                   atol=1e-6 * np.abs(want[path]).max(), err_msg=path)

    # Without axis_name each device normalises with its own two images.
    out, stats = _per_device_train_step(local, mesh)(variables, x)
    assert not np.allclose(out, want_out, rtol=1e-2)
    assert not np.allclose(_flat(stats)["bn1/var"], want["bn1/var"], rtol=1e-2)


def test_parameter_gradients_over_eight_devices_equal_one_devices(rng):
    """The batch split over the mesh with synchronised BN: every kernel's gradient (the
    filter gradient by rows, summed over the devices) equals the whole batch's on one."""
    mesh = parallel.data_mesh()
    model = resnet.resnet18(cifar_stem=True, width=8)
    synced = resnet.resnet18(cifar_stem=True, width=8, axis_name=parallel.DATA_AXIS)
    x = jnp.asarray(rng.normal(size=(2 * mesh.devices.size, 8, 8, 3)), jnp.float32)
    variables = _random_variables(model, rng)

    def loss(model, params, x, axis_name=None):
        out, _ = model.apply({**variables, "params": params}, x, train=True,
                             mutable=["batch_stats"])
        total = jnp.sum(out * jnp.arange(out.shape[-1]))
        return total if axis_name is None else jax.lax.psum(total, axis_name)

    want = jax.jit(jax.grad(functools.partial(loss, model)))(variables["params"], x)
    got = jax.jit(parallel.shard_over_data(
        jax.grad(functools.partial(loss, synced, axis_name=parallel.DATA_AXIS)), mesh,
        in_specs=(P(), parallel.BATCH_SPEC), out_specs=P()))(variables["params"], x)
    want, got = _flat(want), _flat(got)
    assert set(got) == set(want)
    for path in want:
        np.testing.assert_allclose(got[path], want[path], rtol=2e-4,
                                   atol=1e-5 * np.abs(want[path]).max(), err_msg=path)


def test_default_init_is_torchvision():
    variables = _init(resnet.resnet18(), 32)
    params, stats = _flat(variables["params"]), _flat(variables["batch_stats"])
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))
    # kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2 / (k·k·out)).
    k = np.asarray(params["layer4_1/conv2/kernel"])  # 3×3×512×512: 2.4 M draws
    std = np.sqrt(2.0 / (3 * 3 * 512))
    np.testing.assert_allclose(k.std(), std, rtol=1e-2)
    assert abs(k.mean()) < 1e-2 * std
    assert np.abs(k).max() > 4 * std  # untruncated, as torch's normal_
    np.testing.assert_allclose(np.std(params["conv1/kernel"]), np.sqrt(2.0 / (7 * 7 * 64)),
                               rtol=0.1)
    for path, v in {**params, **stats}.items():
        if path.endswith(("/scale", "/var")):
            np.testing.assert_array_equal(v, 1.0, err_msg=path)
        elif path.endswith(("/bias", "/mean")):
            np.testing.assert_array_equal(v, 0.0, err_msg=path)
        else:
            assert path.endswith("/kernel"), path


@pytest.mark.parametrize("name, last_bn", [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_zero_init_residual(name, last_bn):
    model = resnet.RESNETS[name](zero_init_residual=True, width=4)
    scales = {k: v for k, v in _flat(_init(model, 16)["params"]).items()
              if k.endswith("/scale")}
    zeroed = {k for k, v in scales.items() if not np.any(v)}
    # The last BN of every residual branch, and neither the stem's nor a shortcut's.
    assert zeroed == {k for k in scales if k.endswith(f"/{last_bn}/scale")}
    assert len(zeroed) == sum(model.stage_sizes)
    for k in scales.keys() - zeroed:
        np.testing.assert_array_equal(scales[k], 1.0, err_msg=k)


def test_bfloat16_compute_keeps_float32_parameters(rng):
    f32 = resnet.resnet18(cifar_stem=True, width=8)
    bf16 = resnet.resnet18(cifar_stem=True, width=8, dtype=jnp.bfloat16)
    variables = _init(bf16, 16)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))
    variables = _random_variables(f32, rng)
    x = jnp.asarray(rng.normal(size=(4, 16, 16, 3)), jnp.float32)

    def both_modes(model):
        return jax.jit(lambda v, x: (model.apply(v, x, train=False),
                                     model.apply(v, x, train=True, mutable=["batch_stats"])))

    want_eval, (want_train, _) = both_modes(f32)(variables, x)
    got_eval, (got_train, new) = both_modes(bf16)(variables, x)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(new))
    for got, want in ((got_eval, want_eval), (got_train, want_train)):
        assert got.dtype == jnp.bfloat16 and want.dtype == jnp.float32
        got = np.asarray(got, np.float32)
        assert np.linalg.norm(got - want) < 0.03 * np.linalg.norm(want)


@pytest.mark.parametrize("name, cifar_stem, size", [("resnet18", False, 64),
                                                    ("resnet50", True, 16)])
def test_gradients_reach_every_parameter(name, cifar_stem, size, rng):
    model = resnet.RESNETS[name](cifar_stem=cifar_stem, width=4)
    variables = _random_variables(model, rng)
    x = jnp.asarray(rng.normal(size=(2, size, size, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(model.num_features,)), jnp.float32)

    def loss(params):
        out, _ = model.apply({**variables, "params": params}, x, train=True,
                             mutable=["batch_stats"])
        return jnp.sum(out @ w)

    grads = _flat(jax.jit(jax.grad(loss))(variables["params"]))
    assert set(grads) == set(_flat(variables["params"]))
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    assert [k for k, g in grads.items() if not np.any(g)] == []


def assert_conv_equals_lax(conv, x, w, strides, padding):
    """``conv`` gives lax's outputs and both gradients of a loss that weights every
    output differently → the StableHLO text of its jitted value and gradients."""
    dn = jax.lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))

    def loss(conv, x, w):
        y = conv(x, w, strides, padding, dimension_numbers=dn)
        return jnp.sum(y * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape) / y.size)

    ours = jax.jit(jax.value_and_grad(functools.partial(loss, conv), argnums=(0, 1)))
    ref = jax.value_and_grad(functools.partial(loss, jax.lax.conv_general_dilated),
                             argnums=(0, 1))(x, w)
    for a, b in zip(jax.tree.leaves(ours(x, w)), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    return ours.lower(x, w).as_text()


@pytest.mark.parametrize("kernel,stride,pad", [(3, 1, (1, 1)), (3, 2, (1, 1)), (1, 2, (0, 0)),
                                               (7, 2, (3, 3)), (3, 2, (0, 1))])
def test_conv_with_filter_gradient_by_rows_equals_lax(kernel, stride, pad, rng):
    """The CPU convolution (filter gradient as one matmul per kernel row) gives lax's
    outputs and both gradients, for odd sizes, strides and uneven paddings."""
    x = jnp.asarray(rng.standard_normal((7, 9, 9, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((kernel, kernel, 4, 5)), jnp.float32)
    lowered = assert_conv_equals_lax(layers.conv_general_dilated, x, w, (stride, stride),
                                     (pad, pad))
    assert lowered.count("stablehlo.convolution") == 2  # forward and input gradient
