"""Parity of imported weights with the official PyTorch model code; writes the fixture
that the default test run checks without PyTorch (tests/data/weights_parity.json).

    python experiments/weights_parity.py     # needs the bench extra: torch, torchvision, timm

Each case's official model is given ``jax_ssl.weights.random_state_dict`` of its own
keys and shapes (no download) and embeds two images drawn from the same seed: timm's
VisionTransformer (MAE's models_vit and MoCo v3's vits subclass it; DINO's
vision_transformer.py computes the same), torchvision's resnet50 (the ResNet-50 that
DINO, MoCo v3 and torchvision release). The JSON keeps each case's keys, shapes and
features; tests/test_weights.py rebuilds the state dict, converts it and compares.
"""
from __future__ import annotations

import json
import pathlib

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


def main():
    torch.set_num_threads(2)
    fixture = {"image_size": IMAGE_SIZE, "cases": {}}
    for seed, (case, (build, backbone)) in enumerate(CASES.items()):
        model = build()
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        state = weights.random_state_dict(shapes, seed)
        features = official_features(model, state, images(seed))
        fixture["cases"][case] = {"backbone": backbone, "seed": seed, "shapes": shapes,
                                  "features": features.astype(np.float64).round(6).tolist(),
                                  "official": type(model).__module__}
        print(f"{case}: {len(shapes)} tensors, features {features.shape}, "
              f"|f|max {np.abs(features).max():.3f}")
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture))
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
