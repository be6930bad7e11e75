"""Every row of the README's table of published weights, end to end, without downloads.

    python experiments/published_weights.py --dino_code DINO --mae_code MAE \
        --dinov2_code DINOV2 [--out experiments/demo_runs/DATE_published_weights.md]

For each released checkpoint, a stand-in file is written as the released one is laid
out (its wrapping and key prefixes, its heads, projectors and momentum encoders, the
run's argparse.Namespace where the full checkpoints keep one) from the official model's
own state dict with seeded random values (``weights.random_state_dict``). It is imported
by ``jax-ssl-import --model NAME`` (``published.import_weights``), restored as the
evaluation job restores it, and its features on a random 224-px image (DINOv2 _reg: 518
px, its antialiased resizing is not reproduced) are compared with the official model's.
Needs the bench extra (torch, torchvision, timm) and checkouts of facebookresearch/dino,
mae and dinov2. ViT-H/14 (MAE) and ViT-g/14 (DINOv2) convert by the same rules but are
too large for this machine's run.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import demo  # noqa: E402  (experiments/ is this script's directory)
import numpy as np
import timm
import torch
import torchvision
from weights_parity import official_mae

from jax_ssl import weights
from jax_ssl.evaluate import job, published
from jax_ssl.methods import common

SKIPPED = ("mae_vith14", "dinov2_vitg14", "dinov2_vitg14_reg")


def resnet50():
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    return model


def official(name: str, code: dict):
    """(the official model as evaluated: features out; how its file wraps the keys)."""
    if name.startswith("dino_vit"):
        sys.path.insert(0, code["dino"])
        import vision_transformer as dino_vits  # facebookresearch/dino

        size, patch = {"s": "small", "b": "base"}[name[8]], int(name[9:])
        return getattr(dino_vits, f"vit_{size}")(patch_size=patch), "dino full checkpoint"
    if name == "dino_resnet50":
        return resnet50(), "plain"
    if name.startswith("mae_vit"):
        return None, "mae"
    if name.startswith("mocov3_vit"):
        timm_name = {"s": "vit_small_patch16_224", "b": "vit_base_patch16_224"}[name[10]]
        return timm.create_model(timm_name, num_classes=0), "moco v3"
    if name == "mocov3_resnet50":
        return resnet50(), "moco v3"
    if name == "torchvision_resnet50":
        return torchvision.models.resnet50(), "plain"  # with its fc: ignored on import
    if name.startswith("dinov2"):
        sys.path.insert(0, code["dinov2"])
        from dinov2.models import vision_transformer as dinov2_vits

        size = {"s": "small", "b": "base", "l": "large"}[name[10]]
        reg = name.endswith("_reg")
        return getattr(dinov2_vits, f"vit_{size}")(
            patch_size=14, img_size=518, init_values=1e-5, block_chunks=0,
            num_register_tokens=4 if reg else 0, interpolate_antialias=reg,
            interpolate_offset=0.0 if reg else 0.1), "plain"
    raise ValueError(name)


def wrapped(state: dict, layout: str) -> dict:
    """``state`` laid out as the released file holds it."""
    import argparse as argparse_module

    if layout == "dino full checkpoint":  # main_dino.py's saved dict
        return {"student": {f"module.backbone.{k}": v for k, v in state.items()}
                | {"module.head.last_layer.weight_g": torch.ones(1)},
                "teacher": {f"backbone.{k}": v for k, v in state.items()}
                | {"head.mlp.0.weight": torch.zeros(8, 4)},
                "epoch": 100, "args": argparse_module.Namespace(arch="vit_small", lr=5e-4),
                "dino_loss": {"center": torch.zeros(1, 8)}}
    if layout == "moco v3":  # main_moco.py's saved dict
        return {"epoch": 300, "arch": "vit_small",
                "state_dict": {f"module.base_encoder.{k}": v for k, v in state.items()}
                | {f"module.momentum_encoder.{k}": v + 1 for k, v in state.items()}
                | {"module.predictor.0.weight": torch.zeros(8, 4),
                   "module.base_encoder.head.0.weight": torch.zeros(8, 4)}}
    if layout == "mae":
        return {"model": state}
    return state


def check(name: str, code: dict, directory: pathlib.Path) -> dict:
    start = time.perf_counter()
    model, layout = official(name, code)
    if model is None:  # MAE's pre-training checkpoint: the whole model
        model = official_mae(code["mae"], {"mae_vitb16": "mae_vit_base_patch16_dec512d8b",
                                           "mae_vitl16": "mae_vit_large_patch16_dec512d8b"}[name],
                             image_size=224)
    fixed = ("pos_embed", "decoder_pos_embed") if layout == "mae" else ()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in fixed}
    state = {k: torch.from_numpy(v) for k, v in weights.random_state_dict(shapes, 0).items()}
    state.update({k: model.state_dict()[k] for k in fixed})
    model.load_state_dict(state, strict=True)
    if isinstance(getattr(model, "fc", None), torch.nn.Linear):  # torchvision's classifier
        model.fc = torch.nn.Identity()  # features out, as the import leaves it out
    model.eval()
    path = directory / f"{name}.pth"
    torch.save(wrapped(state, layout), path)
    config = published.published_config(name)
    workdir = directory / name
    published.import_weights(str(path), config, str(workdir))
    _, _, backbone, variables = job.restore_backbone(str(workdir), dtype="float32")
    size = 518 if name.endswith("_reg") else 224
    x = np.random.default_rng(1).standard_normal((1, size, size, 3)).astype(np.float32)
    ours = np.asarray(common.pooled(backbone.apply(variables, x, train=False)))
    with torch.no_grad():
        image = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        if layout == "mae":  # the encoder's CLS on every patch (mask ratio 0), as evaluated
            theirs = model.forward_encoder(image, 0.0)[0][:, 0].numpy()
        else:
            theirs = model(image).numpy()
    diff = float(np.abs(ours - theirs).max())
    path.unlink()
    return {"name": name, "layout": layout, "tensors": len(shapes) + len(fixed),
            "max_diff": diff, "scale": float(np.abs(theirs).max()),
            "seconds": time.perf_counter() - start}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for repo in ("dino", "mae", "dinov2"):
        parser.add_argument(f"--{repo}_code", required=True,
                            help=f"a checkout of facebookresearch/{repo}")
    parser.add_argument("--out", default=None, help="the record (markdown) to write")
    args = parser.parse_args()
    torch.set_num_threads(2)
    code = {"dino": args.dino_code, "mae": args.mae_code, "dinov2": args.dinov2_code}
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name in published.PUBLISHED:
            if name in SKIPPED:
                continue
            row = check(name, code, pathlib.Path(directory))
            print(f"{name}: {row['tensors']} tensors ({row['layout']}), max |Δ| "
                  f"{row['max_diff']:.2e} of features up to {row['scale']:.2f} "
                  f"({row['seconds']:.0f} s)", flush=True)
            rows.append(row)
    table = ["| model | file layout | tensors | max abs difference | largest feature |",
             "|---|---|---:|---:|---:|"]
    table += [f"| {r['name']} | {r['layout']} | {r['tensors']} | {r['max_diff']:.1e} | "
              f"{r['scale']:.2f} |" for r in rows]
    report = "\n".join(table)
    print(report)
    if args.out:
        demo.write_record(args.out, "experiments/published_weights.py", report,
                          f"- torch {torch.__version__}, timm {timm.__version__}, "
                          f"torchvision {torchvision.__version__}\n")

if __name__ == "__main__":
    main()
