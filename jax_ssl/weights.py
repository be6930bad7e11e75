"""Published PyTorch weights in and out: ``jax-ssl-import`` and ``jax-ssl-export``.

Our backbones name their parameters as the PyTorch state dicts do (timm's and DINO's ViT,
torchvision's ResNet), so a key maps to a key: ``blocks_3/attn/qkv/kernel`` is
``blocks.3.attn.qkv.weight`` (Linear kernels transposed, conv kernels HWIO ↔ OIHW),
``layer1_0/downsample_conv`` is ``layer1.0.downsample.0``, a LayerNorm's or BN's
``scale`` its ``weight``, BN's ``mean``/``var`` its ``running_mean``/``running_var``.

Reading is safe: ``.safetensors`` files, or PyTorch's zip ``.pth`` files read by an
unpickler that builds tensors and containers only (``torch.load(weights_only=True)``'s
rule, without needing torch) and refuses any other pickled object before it is made.
A checkpoint may wrap the backbone: ``{"model": ...}`` (MAE), ``{"state_dict": ...}``
(MoCo v3), ``{"teacher": ..., "student": ...}`` (DINO's full checkpoints), with key
prefixes (``module.``, ``backbone.``, ``module.base_encoder.``); the prefix whose keys
cover the backbone is found, the teacher (DINO) or base encoder (MoCo v3) preferred
unless ``part`` names another. Heads, projectors, predictors and decoders are left out.
"""
from __future__ import annotations

import collections
import io
import pickle
import re
import zipfile

import numpy as np
import safetensors.numpy
import tensorflow as tf
from flax import traverse_util

from jax_ssl.models.vit import sincos_2d_pos_embed

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                  "HalfStorage": np.float16, "LongStorage": np.int64, "IntStorage": np.int32,
                  "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
                  "BoolStorage": np.bool_}
# parts of a checkpoint that are not the backbone: left out on import
HEAD_PREFIXES = ("head.", "heads.", "fc.", "fc_norm.", "predictor.", "projector.",
                 "decoder_", "mask_token")
PREFERRED_PARTS = ("teacher", "base_encoder")  # DINO and MoCo v3 evaluate these


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit: one line saying why."""


# --- Reading: tensors only.

class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Namespace(dict):
    """Stands in for a pickled ``argparse.Namespace`` (the run's arguments, which DINO's
    and MAE's full checkpoints hold): its fields become items; no code of it runs."""

    def __setstate__(self, state):
        self.update(state)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None):
    del requires_grad, hooks, metadata
    size, stride = tuple(size), tuple(stride)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if all(size) and last >= storage.size:
        raise WeightsError(f"a tensor of shape {list(size)} reaches past its storage of "
                           f"{storage.size} values: the file is damaged.")
    strides = [s * storage.itemsize for s in stride]
    return np.lib.stride_tricks.as_strided(storage[offset:], size, strides).copy()


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    del requires_grad, hooks, state
    return data


def _rebuild_from_type(function, new_type, args, state):
    del new_type, state
    return function(*args)


def _numpy_scalar(dtype, data=None):
    return np.frombuffer(data, dtype)[0] if data is not None else dtype.type()


_ALLOWED = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
            ("torch.nn.parameter", "Parameter"): _Namespace,  # a marker, never called
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("argparse", "Namespace"): _Namespace,
            ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "scalar"): _numpy_scalar,
            ("numpy._core.multiarray", "scalar"): _numpy_scalar}


class _TensorUnpickler(pickle.Unpickler):
    def __init__(self, file, read_storage, path: str):
        super().__init__(file)
        self._read_storage, self._path = read_storage, path

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise WeightsError(
            f"{self._path} holds a pickled {module}.{name}, not only tensors; jax-ssl never "
            "runs pickled code: save the state_dict alone, or as .safetensors.")

    def persistent_load(self, pid):
        kind, storage_type, key, _, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise WeightsError(f"{self._path}: unknown storage record {pid[:2]!r}.")
        return self._read_storage(str(key), storage_type.dtype, int(numel))


def _read_torch(path: str, data: bytes) -> object:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        if data[:2] == b"\x80\x02":
            reason = "a legacy (PyTorch < 1.6) file: re-save it with a current torch.save."
        elif data[:2] == b"PK":
            reason = f"not a complete PyTorch file ({e}): a truncated download? Fetch it again."
        else:
            reason = "neither a PyTorch zip file nor a safetensors file."
        raise WeightsError(f"{path} is {reason}") from e
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if not pickles:
        raise WeightsError(f"{path} is a zip file without data.pkl: not a PyTorch checkpoint.")
    root = pickles[0][:-len("data.pkl")]
    storages = {}

    def read_storage(key, dtype, numel):
        if key not in storages:
            values = np.frombuffer(archive.read(f"{root}data/{key}"), dtype)
            if values.size < numel:
                raise WeightsError(f"{path}: storage {key} has {values.size} of its {numel} "
                                   "values: the file is damaged.")
            storages[key] = values
        return storages[key]
    try:
        return _TensorUnpickler(io.BytesIO(archive.read(pickles[0])), read_storage, path).load()
    except WeightsError:
        raise
    except Exception as e:  # zip CRC, zlib, pickle errors: a damaged file
        raise WeightsError(f"{path} cannot be read ({type(e).__name__}: {e}): the file is "
                           "damaged; fetch it again.") from e


def _flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    if isinstance(tree, np.ndarray) and tree.dtype != object:
        out[prefix.rstrip(".")] = tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
    return out


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` or PyTorch ``.pth``/``.pth.tar`` file, by its
    dotted key (nested dicts joined: ``teacher.backbone.cls_token``)."""
    if not tf.io.gfile.exists(path):
        raise WeightsError(f"weights file {path!r} does not exist.")
    with tf.io.gfile.GFile(path, "rb") as f:  # local or gs://
        data = f.read()
    if data[8:9] != b"{":  # safetensors: an 8-byte header length, then its JSON
        return _flatten(_read_torch(path, data))
    try:
        return dict(safetensors.numpy.load(data))
    except Exception as e:  # safetensors raises its own SafetensorError
        raise WeightsError(f"{path} is not a complete safetensors file ({type(e).__name__}: "
                           f"{str(e)[:120]}): a truncated download? Fetch it again.") from e


# --- Names and layouts.

def torch_key(path: tuple[str, ...], collection: str = "params") -> str:
    """The state-dict key of our parameter at ``path`` (module names, then the leaf).
    An MAE's ``encoder/…`` are the ViT's own keys and ``decoder/embed``, ``…/blocks_i``,
    ``…/norm``, ``…/pred``, ``…/mask_token`` its ``decoder_embed``, ``decoder_blocks.i``,
    ``decoder_norm``, ``decoder_pred`` and ``mask_token`` (models_mae.py)."""
    *modules, leaf = path
    if modules[:1] == ["encoder"]:
        modules = modules[1:]
    elif modules[:1] == ["decoder"]:
        modules = [f"decoder_{m}" for m in modules[1:2]] + modules[2:]
    parts = [{"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}.get(
        m, re.sub(r"^((?:decoder_)?blocks|layer\d)_(\d+)$", r"\1.\2", m)) for m in modules]
    if collection == "batch_stats":
        leaf = {"mean": "running_mean", "var": "running_var"}[leaf]
    else:
        leaf = {"kernel": "weight", "scale": "weight"}.get(leaf, leaf.replace("_gamma", ".gamma"))
    return ".".join([*parts, leaf])


def _to_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
    if name.endswith("kernel") and value.ndim == 2:  # Linear: [in, out] → [out, in]
        return value.T
    if name.endswith("kernel") and value.ndim == 4:  # conv: HWIO → OIHW
        return value.transpose(3, 2, 0, 1)
    return value


def _from_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
    if name.endswith("kernel") and value.ndim == 2:
        return value.T
    if name.endswith("kernel") and value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    return value


def fixed_tables(module) -> dict[str, np.ndarray]:
    """The fixed sin-cos position tables [1, 1 + L, D] (CLS row zero) that PyTorch
    checkpoints store and our modules compute: a sin-cos ViT's ``pos_embed``, and an
    MAE's ``pos_embed`` and ``decoder_pos_embed``."""
    def table(width):
        grid = module.image_size // module.patch_size
        return sincos_2d_pos_embed(width, grid, cls_token=True)[None]
    if getattr(module, "pos_embed", None) == "sincos":  # a ViT (an MAE's encoder)
        return {"pos_embed": table(module.embed_dim)}
    if hasattr(module, "decoder_embed_dim"):  # a whole MAE
        return {"pos_embed": table(module.embed_dim),
                "decoder_pos_embed": table(module.decoder_embed_dim)}
    return {}


def to_state_dict(backbone, variables) -> dict[str, np.ndarray]:
    """Our backbone's variables → the state dict that timm's ViT (``num_classes=0``) or
    torchvision's ResNet (``fc = Identity()``) loads with ``strict=True``."""
    out = {}
    for (collection, *path), value in traverse_util.flatten_dict(variables).items():
        key = torch_key(tuple(path), collection)
        out[key] = np.ascontiguousarray(_to_torch_layout(path[-1], np.asarray(value)))
        if key.endswith("running_var"):
            out[key[:-len("running_var")] + "num_batches_tracked"] = np.zeros((), np.int64)
    return {**out, **fixed_tables(backbone)}


def _backbone_prefix(names, wanted: list[str], part: str | None) -> str:
    """The key prefix under which ``names`` hold most of ``wanted`` (see module doc)."""
    names = set(names)
    candidates = {n[:len(n) - len(w)] for n in names for w in wanted[:3] if n.endswith(w)}
    candidates = {p for p in candidates if p == "" or p.endswith(".")}
    if part is not None:
        candidates = {p for p in candidates if part in p.split(".")}
        if not candidates:
            raise WeightsError(f"--part={part!r}: no part of the checkpoint by that name "
                               "holds the backbone's keys.")
    if not candidates:
        raise WeightsError(f"the checkpoint has no key ending in {wanted[0]!r}: not a "
                           "checkpoint of this architecture.")

    def rank(prefix):
        covered = sum(prefix + w in names for w in wanted)
        preferred = next((i for i, p in enumerate(PREFERRED_PARTS) if p in prefix.split(".")),
                         len(PREFERRED_PARTS))
        return -covered, preferred, len(prefix)
    return min(candidates, key=rank)


def from_state_dict(state: dict[str, np.ndarray], backbone, template, *,
                    part: str | None = None, architecture: str = "the backbone") -> dict:
    """A state dict (``read_state_dict``) → our backbone's variables, shaped as
    ``template`` (its variables or their shapes). ``WeightsError`` names the first key
    that is missing, has another shape, or is left over from another architecture."""
    leaves = traverse_util.flatten_dict(template)
    wanted = [torch_key(tuple(path), collection) for collection, *path in leaves]
    prefix = _backbone_prefix(state, wanted, part)
    mine = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    variables = {}
    for (names, leaf), key in zip(leaves.items(), wanted, strict=True):
        if key not in mine:
            raise WeightsError(f"the checkpoint has no {prefix}{key}, which {architecture} "
                               "needs: a checkpoint of another architecture?")
        # the shape it must have, laid out as torch keeps it (a view: nothing allocated)
        expected = _to_torch_layout(names[-1], np.broadcast_to(np.int8(0), leaf.shape)).shape
        if tuple(mine[key].shape) != expected:
            raise WeightsError(f"{prefix}{key} has shape {list(mine[key].shape)}; "
                               f"{architecture} needs {list(expected)}.")
        variables[names] = _from_torch_layout(names[-1], np.asarray(mine[key], np.float32))
    tables = fixed_tables(backbone)
    for key, table in tables.items():
        if key in mine and (mine[key].shape != table.shape
                            or not np.allclose(mine[key], table, atol=1e-4)):
            raise WeightsError(f"{prefix}{key} is not the fixed sin-cos table that "
                               f"{architecture} uses: import it into a ViT with a learned "
                               "one (--config.model.backbone=vit_…).")
    known = set(wanted) | set(tables)
    left = sorted(k for k in mine if k not in known and not k.endswith("num_batches_tracked")
                  and not k.startswith(HEAD_PREFIXES))
    if left:
        raise WeightsError(f"the checkpoint has {prefix}{left[0]} (and {len(left) - 1} more "
                           f"keys) that {architecture} lacks: a larger model?")
    return traverse_util.unflatten_dict(variables)


def random_state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """A deterministic stand-in for a checkpoint with these keys and shapes (in this
    order), scaled so that a deep network's features stay finite: weights N(0, 1/fan_in),
    norms' weights 1 + N(0, 0.1), biases and tokens N(0, 0.02), BN running means N(0, 0.1)
    and variances U(0.5, 1.5). Parity checks load it into both frameworks."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = np.zeros(shape, np.int64)
        elif key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif key.endswith("running_mean"):
            out[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif key.endswith(".weight") and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            out[key] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        elif key.endswith((".weight", ".gamma")):
            out[key] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            out[key] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
    return out

