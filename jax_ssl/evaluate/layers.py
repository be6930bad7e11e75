"""Per-layer probes: kNN and the fast linear probe on every ResNet stage or ViT block.

Which representation a layer gives:
  * ResNet: the global-average-pooled output map of each stage [B, width·2ⁱ·expansion].
  * ViT: by default the CLS token of each block's output passed through the final
    LayerNorm [B, D] — what DINO's ``get_intermediate_layers`` returns and its linear
    evaluation reads (the last block's is the backbone's own CLS output).
    ``vit_token="mean"`` takes the mean of that block's normed patch tokens instead,
    the global pooling MAE's probes use (``--global_pool``); for an MAE encoder, whose
    CLS token has no training signal, it is the more telling choice.

Each layer is probed with DINO's kNN and ``linear.linear_probe`` (L-BFGS, weight decay
swept) on all training labels; the result names the best layer per protocol.
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

import jax.numpy as jnp
import tensorflow as tf

from jax_ssl.evaluate import features, knn, linear
from jax_ssl.models.resnet import ResNet
from jax_ssl.models.vit import VisionTransformer

VIT_TOKENS = ("cls", "mean")
PROTOCOLS = ("kNN", "linear")


def layer_names(backbone) -> list[str]:
    """``stage 1`` … for a ResNet, ``block 1`` … for a ViT (1-based, input to output)."""
    if isinstance(backbone, ResNet):
        return [f"stage {i + 1}" for i in range(len(backbone.stage_sizes))]
    if isinstance(backbone, VisionTransformer):
        return [f"block {i + 1}" for i in range(backbone.depth)]
    raise TypeError(f"per-layer probes need a ResNet or VisionTransformer backbone, not "
                    f"{type(backbone).__name__}.")


def layer_embedder(backbone, variables, *, vit_token: str = "cls"):
    """``images [B, H, W, C] -> tuple of [B, D_l]``, one pooled representation per layer."""
    if vit_token not in VIT_TOKENS:
        raise ValueError(f"vit_token must be one of {VIT_TOKENS}, not {vit_token!r}.")
    layer_names(backbone)  # the type check
    if isinstance(backbone, ResNet):
        def embed(images):
            stages = backbone.apply(variables, images, train=False, return_stages=True)
            return tuple(jnp.mean(x, axis=(1, 2)) for x in stages)
        return embed

    def embed(images):
        blocks = backbone.apply(variables, images, train=False,
                                return_layers=tuple(range(backbone.depth)))["layers"]
        if vit_token == "cls":
            return tuple(x[:, 0] for x in blocks)
        return tuple(jnp.mean(x[:, 1:], axis=1) for x in blocks)
    return embed


def per_layer_probe(backbone, variables, train_source, test_source, recipe, mesh, *,
                    batch_size: int = 512, vit_token: str = "cls",
                    weight_decays=linear.WEIGHT_DECAYS) -> dict:
    """Top-1 test accuracy of kNN and the linear probe on each layer's features.

    ``weight_decays``: the linear probe's sweep (fewer values: faster).

    Returns ``{"layers": [{"layer", "dim", "kNN", "linear"}, ...] (input to output),
    "best": {protocol: {"layer", "top1"}}, "vit_token"}``.
    """
    embed = layer_embedder(backbone, variables, vit_token=vit_token)
    train_x, train_y = features.extract(embed, train_source, recipe, mesh,
                                        batch_size=batch_size)
    test_x, test_y = features.extract(embed, test_source, recipe, mesh, batch_size=batch_size)
    return probe_layers(backbone, train_x, train_y, test_x, test_y,
                        num_classes=train_source.num_classes, vit_token=vit_token,
                        weight_decays=weight_decays)


def probe_layers(backbone, train_x, train_y, test_x, test_y, *, num_classes: int,
                 vit_token: str = "cls", weight_decays=linear.WEIGHT_DECAYS,
                 log: Callable[[str], None] | None = None) -> dict:
    """``per_layer_probe`` on features already extracted by ``layer_embedder``: tuples of
    [N, D_l] arrays, one per layer. ``log`` gets one progress line per layer (the probes
    of a deep backbone take minutes)."""
    names = layer_names(backbone)
    rows = []
    for i, (name, x, x_test) in enumerate(zip(names, train_x, test_x, strict=True)):
        start = time.perf_counter()
        args = (x, train_y, x_test, test_y)
        rows.append({"layer": name, "dim": int(x.shape[1]),
                     "kNN": knn.knn_accuracy(*args, num_classes=num_classes)["top1"],
                     "linear": linear.linear_probe(*args, num_classes=num_classes,
                                                   weight_decays=weight_decays)["top1"]})
        if log is not None:
            log(f"probe layer {i + 1}/{len(names)} {name}: "
                + ", ".join(f"{p} {100 * rows[-1][p]:.1f}%" for p in PROTOCOLS)
                + f" ({time.perf_counter() - start:.0f} s)")
    return {"layers": rows, "best": best_layers(rows),
            "vit_token": vit_token if isinstance(backbone, VisionTransformer) else None}


def best_layers(rows: list[dict]) -> dict:
    """{protocol: {"layer", "top1"}} of the most accurate layer (the earliest on ties)."""
    best = {}
    for protocol in PROTOCOLS:
        row = max(rows, key=lambda r, p=protocol: r[p])
        best[protocol] = {"layer": row["layer"], "top1": row[protocol]}
    return best


def format_layer_table(result: dict) -> str:
    """One line per layer with its width and kNN / linear top-1 in %, then the best."""
    rows = result["layers"]
    width = max(len(r["layer"]) for r in rows)
    header = f"{'layer':<{width}} | {'dim':>5} | " + " | ".join(f"{p:>7}" for p in PROTOCOLS)
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['layer']:<{width}} | {r['dim']:>5} | "
                     + " | ".join(f"{100 * r[p]:>6.1f}%" for p in PROTOCOLS))
    lines += [f"per-layer best {p}: {b['layer']} ({100 * b['top1']:.1f}%)"
              for p, b in result["best"].items()]
    return "\n".join(lines)


def pyplot(what: str = "the per-layer plot"):
    """matplotlib.pyplot drawing to files; a one-line ImportError naming ``what`` needs it."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(f"{what} needs matplotlib: pip install 'jax-ssl[eval]' "
                          "(or 'matplotlib>=3.7').") from e
    matplotlib.use("Agg")  # files only: no display on training hosts
    import matplotlib.pyplot as plt
    return plt


def layer_axis_label(result: dict) -> str:
    """What the x axis of the per-layer plot runs over."""
    token = result.get("vit_token")
    if token is None:
        return "ResNet stage (global average pool)"
    return f"ViT block ({'CLS' if token == 'cls' else 'mean patch'} token, final LayerNorm)"


def layer_figure(result: dict, *, title: str = "", references: dict | None = None):
    """A matplotlib figure of each protocol's top-1 accuracy (%) per layer, on a 0-100 axis.

    ``references``: {name: {protocol: top-1}}, drawn as horizontal lines in the protocol's
    colour (e.g. a randomly initialised backbone and raw pixels probed the same way).
    """
    plt = pyplot()
    rows = result["layers"]
    figure, axes = plt.subplots(figsize=(max(5.0, 0.6 * len(rows) + 3), 4.0))
    for protocol, marker in zip(PROTOCOLS, "os", strict=True):
        curve, = axes.plot(range(len(rows)), [100 * r[protocol] for r in rows],
                           marker=marker, label=protocol)
        for (name, top1), style in zip((references or {}).items(),
                                       itertools.cycle(("--", ":", "-."))):
            axes.axhline(100 * top1[protocol], color=curve.get_color(), linestyle=style,
                         linewidth=1, label=f"{protocol}, {name}")
    axes.set_xticks(range(len(rows)), [r["layer"] for r in rows],
                    rotation=45 if len(rows) > 6 else 0)
    axes.set_xlabel(layer_axis_label(result))
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_ylim(0, 100)  # the whole scale: layers compare by level, not by zoomed slope
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_layers(result: dict, path: str, *, title: str = "",
                references: dict | None = None) -> str:
    """Writes ``layer_figure`` as a PNG to ``path`` (local or a bucket)."""
    figure = layer_figure(result, title=title, references=references)
    try:
        tf.io.gfile.makedirs(os.path.dirname(path) or ".")  # local or a bucket (gs://...)
        with tf.io.gfile.GFile(path, "wb") as f:
            figure.savefig(f, format="png", dpi=100)
    finally:
        pyplot().close(figure)
    return path
