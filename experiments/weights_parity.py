"""Parity of imported weights with the official PyTorch model code; writes the fixture
that the default test run checks without PyTorch (tests/data/weights_parity.json).

    python experiments/weights_parity.py --mae_code MAE --dinov2_code DINOV2
    # needs the bench extra (torch, torchvision, timm), and checkouts of
    # facebookresearch/mae (models_mae.py, util/) and facebookresearch/dinov2 (dinov2/)

Each case's official model is given ``jax_ssl.weights.random_state_dict`` of its own
keys and shapes (no download) and embeds two images drawn from the same seed: timm's
VisionTransformer (MAE's models_vit and MoCo v3's vits subclass it; DINO's
vision_transformer.py computes the same), torchvision's resnet50 (the ResNet-50 that
DINO, MoCo v3 and torchvision release), and MAE's own MaskedAutoencoderViT (its
ViT-B/16 with the 512-d, 8-block decoder), whose fixed sin-cos tables stay its own: its
encoder runs on the patches its seeded random masking keeps and its decoder predicts
every patch; and DINOv2's own ViT-S/14 (LayerScale, its mask token) at 224 px, which
resizes its 518-px position embedding as DINOv2 does (offset 0.1). The JSON keeps each
case's keys, shapes and features (MAE: the masking's ``ids_restore`` and the first
image's predicted pixels); tests/test_weights.py rebuilds the state dict, converts it
and compares.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import timm
import torch
import torchvision

from jax_ssl import weights

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "weights_parity.json"
IMAGE_SIZE = 64  # the layouts are those of 224 px; small images keep the fixture quick


def resnet50():
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    return model


# case: (the official model, our backbone and its keyword arguments)
CASES = {
    "vit_s16": (lambda: timm.create_model("vit_small_patch16_224", img_size=IMAGE_SIZE,
                                          num_classes=0), "vit_s16"),
    "vit_b16": (lambda: timm.create_model("vit_base_patch16_224", img_size=IMAGE_SIZE,
                                          num_classes=0), "vit_b16"),
    "resnet50": (resnet50, "resnet50"),
}


def images(seed: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """[2, size, size, 3] float32: the inputs, NHWC."""
    return np.random.default_rng(seed).standard_normal((2, size, size, 3)).astype(np.float32)


def official_features(model, state: dict, x: np.ndarray) -> np.ndarray:
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
                          strict=True)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def official_mae(code: str, builder: str = "mae_vit_base_patch16_dec512d8b",
                 image_size: int = IMAGE_SIZE):
    """models_mae's ``builder`` at ``image_size`` px. Two shims for today's
    libraries: models_mae passes timm's Block a ``qk_scale=None`` that timm ≥ 0.9 no
    longer takes (dropped), and util/pos_embed.py uses ``np.float`` (gone from NumPy
    1.24: the builtin float it aliased)."""
    import timm.models.vision_transformer as timm_vit

    np.float = float

    class Block(timm_vit.Block):
        def __init__(self, *args, qk_scale=None, **kwargs):
            del qk_scale
            super().__init__(*args, **kwargs)
    timm_vit.Block = Block
    sys.path.insert(0, code)
    import models_mae

    return getattr(models_mae, builder)(img_size=image_size)


def mae_case(code: str, seed: int) -> dict:
    model = official_mae(code)
    fixed = ("pos_embed", "decoder_pos_embed")
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    state = weights.random_state_dict({k: v for k, v in shapes.items() if k not in fixed},
                                      seed)
    state.update({k: model.state_dict()[k].numpy() for k in fixed})
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    model.eval()
    x = torch.from_numpy(images(seed).transpose(0, 3, 1, 2).copy())
    torch.manual_seed(seed)
    with torch.no_grad():
        latent, _, ids_restore = model.forward_encoder(x, 0.75)
        pred = model.forward_decoder(latent, ids_restore).numpy()
    return {"backbone": "mae_vit_b16", "seed": seed, "shapes": shapes, "fixed": list(fixed),
            "ids_restore": ids_restore.numpy().tolist(),
            "features": pred[0].astype(np.float64).round(6).tolist(),
            "official": "facebookresearch/mae models_mae.py"}


def official_dinov2(code: str):
    """dinov2_vits14 as its hub builder makes it (LayerScale 1e-5 at init is then
    replaced by the seeded state dict)."""
    sys.path.insert(0, code)
    from dinov2.models import vision_transformer

    return vision_transformer.vit_small(patch_size=14, img_size=518, init_values=1e-5,
                                        block_chunks=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mae_code", required=True,
                        help="a checkout of facebookresearch/mae (models_mae.py, util/)")
    parser.add_argument("--dinov2_code", required=True,
                        help="a checkout of facebookresearch/dinov2 (the dinov2 package)")
    args = parser.parse_args()
    CASES["dinov2_vits14"] = (lambda: official_dinov2(args.dinov2_code), "dinov2_vits14")
    torch.set_num_threads(2)
    fixture = {"image_size": IMAGE_SIZE, "cases": {}}
    for seed, (case, (build, backbone)) in enumerate(CASES.items()):
        model = build()
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        state = weights.random_state_dict(shapes, seed)
        size = 224 if case.startswith("dinov2") else IMAGE_SIZE
        features = official_features(model, state, images(seed, size))
        fixture["cases"][case] = {"backbone": backbone, "seed": seed, "shapes": shapes,
                                  "image_size": size,
                                  "features": features.astype(np.float64).round(6).tolist(),
                                  "official": type(model).__module__}
        print(f"{case}: {len(shapes)} tensors, features {features.shape}, "
              f"|f|max {np.abs(features).max():.3f}")
    fixture["cases"]["mae_vit_b16"] = mae_case(args.mae_code, len(CASES))
    print(f"mae_vit_b16: {len(fixture['cases']['mae_vit_b16']['shapes'])} tensors")
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture))
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
