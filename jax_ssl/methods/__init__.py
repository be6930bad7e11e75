"""One small module per method (DESIGN.md §2); ``get(name)`` returns it."""
from __future__ import annotations

import importlib

NAMES = ("simclr", "moco_v3", "swav", "dino", "ibot", "dinov2", "ijepa", "qbheat", "mae",
         "byol", "barlow_twins", "vicreg", "rotation", "jigsaw", "relative_position", "pirl")


def get(name: str):
    """The module of method ``name`` (see ``jax_ssl.methods.common`` for its interface)."""
    if name not in NAMES:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(NAMES)}.")
    try:
        return importlib.import_module(f"jax_ssl.methods.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"jax_ssl.methods.{name}":
            raise NotImplementedError(f"method {name!r} is not implemented yet.") from e
        raise
