"""Published weights: safe reading, names and layouts, parity with the official PyTorch
models (from a committed fixture; regenerated when PyTorch is installed), clear errors,
and workdirs in and out."""
import io
import json
import pathlib
import pickle
import zipfile

import jax
import numpy as np
import pytest

from jax_ssl import models, weights
from jax_ssl.methods import common

FIXTURE = pathlib.Path(__file__).parent / "data" / "weights_parity.json"


def _init(backbone, size):
    return jax.jit(lambda: backbone.init(jax.random.PRNGKey(0),
                                         np.zeros((1, size, size, 3), np.float32),
                                         train=False))()


def _features(backbone, variables, x):
    return np.asarray(common.pooled(backbone.apply(variables, x, train=False)))


def _convert(state, backbone, size):
    template = jax.eval_shape(lambda: _init(backbone, size))
    return weights.from_state_dict(state, backbone, template)


@pytest.mark.parametrize("case", ["vit_s16", "vit_b16", "resnet50", "dinov2_vits14"])
def test_imported_features_equal_the_official_models_from_the_fixture(case):
    spec = json.loads(FIXTURE.read_text())["cases"][case]
    size = spec["image_size"]
    shapes = {k: tuple(v) for k, v in spec["shapes"].items()}
    state = weights.random_state_dict(shapes, spec["seed"])
    # timm's ViTs are made for the fixture's images; DINOv2's for 518 px, resized to 224
    kwargs = {"image_size": size} if case.startswith("vit") else {}
    backbone = models.backbone(spec["backbone"], **kwargs)
    x = np.random.default_rng(spec["seed"]).standard_normal((2, size, size, 3)).astype(np.float32)
    template = jax.eval_shape(lambda: _init(backbone, getattr(backbone, "image_size", size)))
    ours = _features(backbone, weights.from_state_dict(state, backbone, template), x)
    np.testing.assert_allclose(ours, np.asarray(spec["features"]), atol=1e-4)


def test_imported_mae_reconstructs_as_the_official_model_from_the_fixture():
    from jax_ssl.models.mae import MAEDecoder
    fixture = json.loads(FIXTURE.read_text())
    size, spec = fixture["image_size"], fixture["cases"]["mae_vit_b16"]
    model = models.MAES["mae_vit_b16"](image_size=size)
    shapes = {k: tuple(v) for k, v in spec["shapes"].items() if k not in spec["fixed"]}
    # the fixed tables are models_mae.py's own in the fixture, ours here
    state = {**weights.random_state_dict(shapes, spec["seed"]), **weights.fixed_tables(model)}
    template = jax.eval_shape(lambda: model.init(
        {"params": jax.random.PRNGKey(0), "masking": jax.random.PRNGKey(1)},
        np.zeros((1, size, size, 3), np.float32)))
    params = weights.from_state_dict(state, model, template)["params"]
    x = np.random.default_rng(spec["seed"]).standard_normal((2, size, size, 3)).astype(np.float32)
    ids_restore = np.asarray(spec["ids_restore"], np.int32)
    keep = int(ids_restore.shape[1] * 0.25)
    ids_keep = np.argsort(ids_restore, axis=1)[:, :keep]  # the official masking's kept patches
    encoder = models.vit.VisionTransformer(
        patch_size=16, embed_dim=768, depth=12, num_heads=12, pos_embed="sincos",
        image_size=size)
    encoded = encoder.apply({"params": params["encoder"]}, x, patch_ids=ids_keep)
    latent = np.concatenate([encoded["cls"][:, None], encoded["patch_tokens"]], axis=1)
    decoder = MAEDecoder(16 * 16 * 3, 512, 8, 16)
    grid = (size // 16, size // 16)
    pred = decoder.apply({"params": params["decoder"]}, latent, ids_restore, grid)
    np.testing.assert_allclose(pred[0], np.asarray(spec["features"]), atol=1e-4)


@pytest.mark.parametrize("name, backbone, size", [
    ("vit_small_patch16_224", "vit_s16", 224), ("vit_base_patch16_224", "vit_b16", 224),
    ("resnet50", "resnet50", 224)])
def test_imported_official_init_equals_pytorch_when_installed(name, backbone, size):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    if name == "resnet50":
        model = torchvision.models.resnet50()
        model.fc = torch.nn.Identity()
    else:
        model = timm.create_model(name, num_classes=0)
    model.eval()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    ours = models.backbone(backbone)
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(_features(ours, _convert(state, ours, size), x), theirs,
                               atol=1e-4)


@pytest.mark.parametrize("name, kwargs, size", [
    ("dinov2_vits14_reg", dict(depth=2, image_size=28), 28),  # layer scale, registers
    ("resnet18", {}, 32), ("mae_vit_tiny", {}, 32)])
def test_state_dict_round_trip_is_exact(name, kwargs, size, tmp_path):
    import safetensors.numpy
    if name.startswith("mae"):  # the whole MAE: encoder and decoder
        backbone = models.MAES[name]()
        variables = jax.tree.map(np.asarray, jax.jit(lambda: backbone.init(
            {"params": jax.random.PRNGKey(0), "masking": jax.random.PRNGKey(1)},
            np.zeros((1, size, size, 3), np.float32)))())
    else:
        backbone = models.backbone(name, **kwargs)
        variables = jax.tree.map(np.asarray, _init(backbone, size))
    state = weights.to_state_dict(backbone, variables)
    assert ("pos_embed" in state) == name.startswith(("mae", "dinov2"))  # MAE's: fixed
    if name.startswith("mae"):  # models_mae.py's names
        assert {"decoder_embed.weight", "decoder_blocks.1.mlp.fc2.bias", "decoder_norm.bias",
                "decoder_pred.weight", "mask_token", "decoder_pos_embed", "blocks.5.norm1.weight",
                "norm.weight"} <= set(state)
    safetensors.numpy.save_file(state, tmp_path / "w.safetensors")
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), variables)
    back = weights.from_state_dict(weights.read_state_dict(str(tmp_path / "w.safetensors")),
                                   backbone, template)
    assert jax.tree.structure(back) == jax.tree.structure(variables)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(a, b)


def test_names_and_layouts_by_hand():
    assert weights.torch_key(("blocks_3", "attn", "qkv", "kernel")) == "blocks.3.attn.qkv.weight"
    assert weights.torch_key(("layer1_0", "downsample_conv", "kernel")) == \
        "layer1.0.downsample.0.weight"
    assert weights.torch_key(("layer4_2", "bn3", "var"), "batch_stats") == \
        "layer4.2.bn3.running_var"
    assert weights.torch_key(("blocks_0", "ls1_gamma")) == "blocks.0.ls1.gamma"
    assert weights.torch_key(("norm", "scale")) == "norm.weight"
    backbone = models.backbone("vit_ti16", depth=1, image_size=32)
    variables = jax.tree.map(np.asarray, _init(backbone, 32))
    state = weights.to_state_dict(backbone, variables)
    kernel = variables["params"]["blocks_0"]["mlp"]["fc1"]["kernel"]  # [in 192, out 768]
    np.testing.assert_array_equal(state["blocks.0.mlp.fc1.weight"], kernel.T)
    conv = variables["params"]["patch_embed"]["proj"]["kernel"]  # HWIO
    assert state["patch_embed.proj.weight"].shape == (192, 3, 16, 16)  # OIHW
    np.testing.assert_array_equal(state["patch_embed.proj.weight"][5, 2, 3, 7], conv[3, 7, 2, 5])


def _vit_state(depth=2, **kwargs):
    backbone = models.backbone("vit_ti16", depth=depth, image_size=32, **kwargs)
    return backbone, weights.to_state_dict(backbone, jax.tree.map(np.asarray,
                                                                  _init(backbone, 32)))


def test_the_backbone_is_found_inside_wrapped_checkpoints():
    backbone, state = _vit_state()
    template = jax.eval_shape(lambda: _init(backbone, 32))
    other = {k: v + 1 for k, v in state.items()}
    expected = weights.from_state_dict(state, backbone, template)

    def same(found):
        return all(np.array_equal(a, b) for a, b in zip(
            jax.tree.leaves(found), jax.tree.leaves(expected), strict=True))
    dino_full = {**{f"teacher.backbone.{k}": v for k, v in state.items()},
                 **{f"student.module.backbone.{k}": v for k, v in other.items()},
                 "teacher.head.mlp.0.weight": np.zeros((4, 192), np.float32)}
    assert same(weights.from_state_dict(dino_full, backbone, template))  # the teacher
    assert not same(weights.from_state_dict(dino_full, backbone, template, part="student"))
    moco = {**{f"state_dict.module.momentum_encoder.{k}": v for k, v in other.items()},
            **{f"state_dict.module.base_encoder.{k}": v for k, v in state.items()}}
    assert same(weights.from_state_dict(moco, backbone, template))  # the base encoder
    mae = {**{f"model.{k}": v for k, v in state.items()},
           "model.decoder_embed.weight": np.zeros((8, 192), np.float32),
           "model.mask_token": np.zeros((1, 1, 8), np.float32)}
    assert same(weights.from_state_dict(mae, backbone, template))
    with pytest.raises(weights.WeightsError, match="--part='critic'"):
        weights.from_state_dict(dino_full, backbone, template, part="critic")


def test_another_architecture_is_a_clear_error_naming_the_key():
    small, state = _vit_state(depth=2)
    template = jax.eval_shape(lambda: _init(small, 32))
    wider = models.backbone("vit_s16", depth=2, image_size=32)
    with pytest.raises(weights.WeightsError, match=r"blocks\.0\.attn\.proj\.bias has shape "
                                                   r"\[192\]; vit_s16 needs \[384\]"):
        weights.from_state_dict(state, wider,
                                jax.eval_shape(lambda: _init(wider, 32)), architecture="vit_s16")
    _, deeper = _vit_state(depth=3)
    with pytest.raises(weights.WeightsError, match=r"has blocks\.2\..* that the backbone lacks"):
        weights.from_state_dict(deeper, small, template)
    shallower = {k: v for k, v in state.items() if not k.startswith("blocks.1.")}
    with pytest.raises(weights.WeightsError, match=r"has no blocks\.1\.attn\.proj\.bias"):
        weights.from_state_dict(shallower, small, template)
    resnet = models.backbone("resnet18")
    with pytest.raises(weights.WeightsError, match="no key ending in 'bn1.running_mean'"):
        weights.from_state_dict(state, resnet, jax.eval_shape(lambda: _init(resnet, 32)))


# --- The .pth reader, without torch: files laid out as torch.save writes them.

def _torch_zip(obj_bytes: bytes, storages: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", obj_bytes)
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return buffer.getvalue()


def _pickle_ops(tensors: dict[str, tuple[str, str, int, int, tuple, tuple]]) -> bytes:
    """A protocol-2 pickle as torch.save writes it, opcode by opcode: {name:
    _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}, the
    storage a persistent id ("storage", torch.<dtype>Storage, key, "cpu", numel)."""
    def global_(module, name):
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def tuple_(items):
        return b"(" + b"".join(items) + b"t"

    def int_(n):
        return b"I" + str(n).encode() + b"\n"

    def str_(s):
        return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()
    out = b"\x80\x02" + global_("collections", "OrderedDict") + b")R"
    for name, (dtype, key, numel, offset, size, stride) in tensors.items():
        storage = tuple_([str_("storage"), global_("torch", dtype), str_(key), str_("cpu"),
                          int_(numel)])
        out += str_(name) + global_("torch._utils", "_rebuild_tensor_v2") + tuple_([
            storage + b"Q", int_(offset), tuple_([int_(n) for n in size]),
            tuple_([int_(s) for s in stride]), b"\x89",
            global_("collections", "OrderedDict") + b")R"]) + b"Rs"
    return out + b"."


def test_pth_files_are_read_as_tensors_only(tmp_path):
    values = np.arange(12, dtype=np.float32)
    halves = np.arange(4, dtype=np.float16)
    pkl = _pickle_ops({"w": ("FloatStorage", "0", 12, 0, (3, 4), (4, 1)),
                       "w_t": ("FloatStorage", "0", 12, 1, (2, 3), (1, 4)),  # strided view
                       "h": ("HalfStorage", "1", 4, 0, (4,), (1,))})
    path = tmp_path / "ok.pth"
    path.write_bytes(_torch_zip(pkl, {"0": values.tobytes(), "1": halves.tobytes()}))
    state = weights.read_state_dict(str(path))
    np.testing.assert_array_equal(state["w"], values.reshape(3, 4))
    np.testing.assert_array_equal(state["w_t"], [[1, 5, 9], [2, 6, 10]])
    assert state["h"].dtype == np.float16 and state["h"].tolist() == [0, 1, 2, 3]
    # any other pickled object is refused before it is made: here os.system
    evil = pickle.dumps({"w": _Run(tmp_path / "hacked")}, protocol=2)
    (tmp_path / "evil.pth").write_bytes(_torch_zip(evil, {}))
    with pytest.raises(weights.WeightsError, match=r"holds a pickled (posix|os|nt)\.system, "
                                                   "not only tensors"):
        weights.read_state_dict(str(tmp_path / "evil.pth"))
    assert not (tmp_path / "hacked").exists()
    # truncated: the zip's directory at the end is gone
    (tmp_path / "cut.pth").write_bytes(path.read_bytes()[:-40])
    with pytest.raises(weights.WeightsError, match="truncated download"):
        weights.read_state_dict(str(tmp_path / "cut.pth"))
    # a storage shorter than its tensors
    (tmp_path / "short.pth").write_bytes(_torch_zip(pkl, {"0": values[:6].tobytes(),
                                                          "1": halves.tobytes()}))
    with pytest.raises(weights.WeightsError, match="damaged"):
        weights.read_state_dict(str(tmp_path / "short.pth"))
    (tmp_path / "noise.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(weights.WeightsError, match="neither a PyTorch zip file nor a safetensors"):
        weights.read_state_dict(str(tmp_path / "noise.bin"))


class _Run:
    """Unpickled, runs ``touch path``: what a malicious checkpoint would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.path}",)


def test_pth_files_from_torch_read_as_torch_loads_them(tmp_path):
    torch = pytest.importorskip("torch")
    import argparse
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    saved = {"model": {"a": base, "a_t": base.t(), "p": torch.nn.Parameter(base[1:3]),
                       "bf": base.to(torch.bfloat16)[0].float().half(),
                       "i": torch.tensor([1, 2], dtype=torch.int64), "n": torch.tensor(3.5)},
             "args": argparse.Namespace(lr=0.1), "epoch": 4}
    torch.save(saved, tmp_path / "t.pth")
    state = weights.read_state_dict(str(tmp_path / "t.pth"))
    # our own file: torch may unpickle it whole (its weights_only refuses the Namespace)
    expected = torch.load(tmp_path / "t.pth", weights_only=False)["model"]
    assert set(state) == {f"model.{k}" for k in expected}
    for key, tensor in expected.items():
        np.testing.assert_array_equal(state[f"model.{key}"], tensor.detach().numpy())


def test_an_imported_workdir_evaluates_and_exports_back_exactly(tmp_path):
    import safetensors.numpy

    from jax_ssl.config import from_file
    from jax_ssl.evaluate import job, published
    config = from_file(pathlib.Path(__file__).parent.parent / "configs" / "dino_digits.py")
    backbone = common.build_backbone(config, axis_name=None)
    variables = jax.tree.map(np.asarray, job.random_backbone_variables(backbone, config, 3))
    state = weights.to_state_dict(backbone, variables)
    # as DINO's full checkpoints hold it: the teacher's backbone beside the student's
    wrapped = {**{f"teacher.backbone.{k}": v for k, v in state.items()},
               **{f"student.module.backbone.{k}": v + 1 for k, v in state.items()}}
    safetensors.numpy.save_file(wrapped, tmp_path / "dino.safetensors")
    workdir = tmp_path / "imported"
    published.import_weights(str(tmp_path / "dino.safetensors"), config, str(workdir))
    restored_config, step, _, restored = job.restore_backbone(str(workdir))  # as eval does
    assert step == 0 and restored_config.model.backbone == config.model.backbone
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(a, b)
    published.export_weights(str(workdir), str(tmp_path / "out.safetensors"))
    exported = safetensors.numpy.load_file(tmp_path / "out.safetensors")
    assert exported.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value)
    with pytest.raises(weights.WeightsError, match="already holds a run's checkpoints"):
        published.import_weights(str(tmp_path / "dino.safetensors"), config, str(workdir))


def test_an_mae_pretraining_checkpoint_imports_with_its_decoder(tmp_path):
    import safetensors.numpy

    from jax_ssl import checkpoints
    from jax_ssl.config import from_file
    from jax_ssl.evaluate import job, published
    from jax_ssl.methods import mae
    config = from_file(pathlib.Path(__file__).parent.parent / "configs" / "mae_digits.py")
    model = mae.network(config)
    size = model.image_size
    variables = jax.tree.map(np.asarray, jax.jit(lambda: model.init(
        {"params": jax.random.PRNGKey(0), "masking": jax.random.PRNGKey(1)},
        np.zeros((1, size, size, 3), np.float32)))())
    state = weights.to_state_dict(model, variables)
    safetensors.numpy.save_file({f"model.{k}": v for k, v in state.items()},
                                tmp_path / "mae.safetensors")
    published.import_weights(str(tmp_path / "mae.safetensors"), config, str(tmp_path / "w"))
    saved = checkpoints.restore_state(checkpoints.manager(str(tmp_path / "w"), read_only=True), 0)
    for a, b in zip(jax.tree.leaves(saved["params"]), jax.tree.leaves(variables["params"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    _, _, _, encoder = job.restore_backbone(str(tmp_path / "w"))  # eval: the encoder
    assert jax.tree.structure(encoder["params"]) == jax.tree.structure(
        variables["params"]["encoder"])
    state["decoder_pos_embed"] = state["decoder_pos_embed"] + 0.1  # learned, not MAE's
    safetensors.numpy.save_file(state, tmp_path / "learned.safetensors")
    with pytest.raises(weights.WeightsError, match="decoder_pos_embed is not the fixed"):
        published.import_weights(str(tmp_path / "learned.safetensors"), config,
                                 str(tmp_path / "w2"))
    assert not (tmp_path / "w2").exists()


def test_the_commands_fail_on_one_line_and_write_nothing(tmp_path):
    import subprocess
    import sys
    bin_dir = pathlib.Path(sys.executable).parent
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    out = subprocess.run([str(bin_dir / "jax-ssl-import"), "--model", "dino_vits16",
                          "--weights", str(tmp_path / "cut.pth"),
                          "--workdir", str(tmp_path / "w")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "truncated download" in out.stderr
    assert not (tmp_path / "w").exists()
    from jax_ssl.evaluate import job, published
    with pytest.raises(job.NoCheckpoint, match="no checkpoints in"):  # the export's error
        published.export_weights(str(tmp_path / "w"), str(tmp_path / "o.safetensors"))
    assert not (tmp_path / "o.safetensors").exists()


def test_a_truncated_safetensors_file_is_a_clear_error(tmp_path):
    import safetensors.numpy
    _, state = _vit_state(depth=1)
    data = safetensors.numpy.save(state)
    (tmp_path / "cut.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(weights.WeightsError, match="not a complete safetensors file"):
        weights.read_state_dict(str(tmp_path / "cut.safetensors"))
    with pytest.raises(weights.WeightsError, match="does not exist"):
        weights.read_state_dict(str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("name", ["vit_s16", "resnet50"])
def test_exported_state_dicts_load_strictly_into_timm_and_torchvision(name):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    torchvision = pytest.importorskip("torchvision")
    backbone = models.backbone(name)
    state = weights.to_state_dict(backbone, jax.tree.map(np.asarray, _init(backbone, 224)))
    if name == "resnet50":
        model = torchvision.models.resnet50()
        model.fc = torch.nn.Identity()
    else:
        model = timm.create_model("vit_small_patch16_224", num_classes=0)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
