"""``jax-ssl-analyze TOOL --workdir W``: the tools on a training run's checkpoint.

Restores the backbone as the evaluation job does (the teacher for the methods that
evaluate it), takes the first ``num_images`` images of the eval split through the
evaluation transform, and writes PNGs and a JSON of the numbers to ``W/analysis/``
(``<tool>_step_N.json``, ``<tool>_step_N_*.png``).
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import tensorflow as tf

from jax_ssl.analysis import maps, relax
from jax_ssl.cli import ANALYZE_TOOLS as TOOLS
from jax_ssl.data import pipeline, recipes, sources
from jax_ssl.evaluate import job as eval_job
from jax_ssl.evaluate import layers as eval_layers
from jax_ssl.methods import common


def _log(message: str):
    if jax.process_index() == 0:
        print(message, flush=True)


def eval_images(config, num_images: int) -> np.ndarray:
    """The first ``num_images`` of the eval split, as the evaluation job transforms them."""
    data = config.data
    source = sources.get_source(data.source, data.eval_split, data_dir=data.get("data_dir"),
                                image_size=data.get("image_size"))
    recipe = recipes.make_recipe("eval", size=data.crop_size,
                                 resize_size=data.eval_resize_size,
                                 normalization=data.recipe_kwargs.normalization)
    batch = next(iter(pipeline.eval_batches(source, recipe, global_batch_size=num_images,
                                            process_index=0, process_count=1)))
    return np.asarray(batch["image"])


def _show(image: np.ndarray) -> np.ndarray:
    """A normalised image back to [0, 1] for display (min-max per image)."""
    low, high = image.min(), image.max()
    return (image - low) / max(high - low, 1e-8)


def run(tool: str, workdir: str, *, step: int | None = None, num_images: int = 4,
        num_masks: int = 3000, pixel: tuple[int, int] | None = None, query_image: int = 0,
        threshold: float = 0.6, seed: int = 0) -> dict:
    """Runs ``tool`` and writes its outputs; returns the JSON's dict (with the paths)."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; choose one of {', '.join(TOOLS)}.")
    config, step, backbone, variables = eval_job.restore_backbone(workdir, step)
    if tool != "relax":
        maps.require_vit(backbone, tool)
    if tool == "patch-similarity" and not 0 <= query_image < num_images:
        raise ValueError(f"--query_image={query_image} is not one of the {num_images} images "
                         f"(0 … {num_images - 1}).")
    images = eval_images(config, num_images)
    if pixel is not None:
        patch = maps.pixel_to_patch(pixel, images.shape[1:3], backbone.patch_size)
    plt = eval_layers.pyplot("the analysis pictures")
    directory = os.path.join(workdir, "analysis")
    tf.io.gfile.makedirs(directory)
    prefix = os.path.join(directory, f"{tool.replace('-', '_')}_step_{step}")
    out = {"tool": tool, "step": step, "method": config.method, "pictures": []}

    def save(fig, name):
        path = f"{prefix}_{name}.png"
        with tf.io.gfile.GFile(path, "wb") as f:
            fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        out["pictures"].append(path)

    if tool == "relax":
        embed = jax.jit(lambda x: common.pooled(backbone.apply(variables, x, train=False)))
        out["images"] = []
        for i, image in enumerate(images):
            _log(f"relax: image {i + 1}/{num_images}")
            result = jax.device_get(relax.relax(
                embed, image, jax.random.fold_in(jax.random.PRNGKey(seed), i),
                num_masks=num_masks, log=_log))
            fig, axes = plt.subplots(1, 4, figsize=(12, 3))
            axes[0].imshow(_show(image))
            importance = result["importance"]
            shown = {"importance": importance, "uncertainty": result["uncertainty"],
                     # on the importance's scale, the uncertain pixels left out (clear)
                     "U-RELAX": np.ma.masked_where(result["u_relax"] == 0, importance)}
            for ax, (name, values) in zip(axes[1:], shown.items(), strict=True):
                ax.imshow(_show(image), alpha=0.5)
                limits = {} if name == "uncertainty" else dict(vmin=importance.min(),
                                                               vmax=importance.max())
                ax.imshow(values, cmap="jet", alpha=0.5, **limits)
                ax.set_title(name)
            for ax in axes:
                ax.axis("off")
            save(fig, f"image_{i}")
            out["images"].append({k: np.asarray(result[k]).round(6).tolist()
                                  for k in ("importance", "uncertainty", "u_relax")})
    elif tool == "attention":
        attention = np.asarray(maps.cls_attention(backbone, variables, images))
        kept = maps.keep_mass(attention, threshold)
        heads = attention.shape[1]
        fig, axes = plt.subplots(num_images, heads + 2, figsize=(2 * (heads + 2),
                                                                 2 * num_images),
                                 squeeze=False)
        for i in range(num_images):
            axes[i, 0].imshow(_show(images[i]))
            for h in range(heads):
                axes[i, h + 1].imshow(attention[i, h], cmap="inferno")
                axes[i, h + 1].contour(kept[i, h], levels=[0.5], colors="white",
                                       linewidths=0.8)
            axes[i, -1].imshow(attention[i].mean(0), cmap="inferno")
            for ax in axes[i]:
                ax.axis("off")
        for h in range(heads):
            axes[0, h + 1].set_title(f"head {h}")
        axes[0, -1].set_title("mean")
        save(fig, "heads")
        out.update(threshold=threshold, attention=attention.round(6).tolist(),
                   kept_fraction_of_patches=kept.mean(axis=(-2, -1)).round(4).tolist())
    else:
        if pixel is None:  # the query image's centre
            pixel = (images.shape[1] // 2, images.shape[2] // 2)
            patch = maps.pixel_to_patch(pixel, images.shape[1:3], backbone.patch_size)
        features = maps.patch_features(backbone, variables, images)
        similarity = np.asarray(maps.similarity_maps(features, query_image, patch))
        fig, axes = plt.subplots(2, num_images, figsize=(2.2 * num_images, 4.4),
                                 squeeze=False)
        for i in range(num_images):
            axes[0, i].imshow(_show(images[i]))
            axes[1, i].imshow(similarity[i], cmap="viridis", vmin=-1, vmax=1)
            for ax in axes[:, i]:
                ax.axis("off")
        axes[0, query_image].scatter([pixel[1]], [pixel[0]], c="red", s=30, marker="x")
        axes[0, query_image].set_title("query")
        save(fig, "maps")
        out.update(pixel=list(pixel), patch=list(patch), query_image=query_image,
                   similarity=similarity.round(6).tolist())
    with tf.io.gfile.GFile(f"{prefix}.json", "w") as f:
        json.dump(out, f)
    _log(f"{tool}: wrote {', '.join(out['pictures'])} and {prefix}.json")
    return out
