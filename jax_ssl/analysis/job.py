"""``jax-ssl-analyze TOOL --workdir W``: the tools on a training run's checkpoint.

Restores the backbone as the evaluation job does (the teacher for the methods that
evaluate it), takes the first ``num_images`` images of the eval split through the
evaluation transform (embed-map: the features of its first ``num_points``; curate: the
features of a pool and a seed set, over the mesh), and writes PNGs and a JSON of the
numbers to ``W/analysis/`` (``<tool>_step_N.json``, ``<tool>_step_N_*.png``; curate:
``curate_step_N_curated.txt``, one retrieved pool image per line).
"""
from __future__ import annotations

import functools
import json
import os

import jax
import numpy as np
import tensorflow as tf

from jax_ssl import methods, parallel
from jax_ssl.analysis import curate, dejavu, embed_map, maps, relax
from jax_ssl.cli import ANALYZE_TOOLS as TOOLS
from jax_ssl.data import pipeline, recipes, sources
from jax_ssl.evaluate import features as eval_features
from jax_ssl.evaluate import job as eval_job
from jax_ssl.evaluate import layers as eval_layers
from jax_ssl.methods import common


def _log(message: str):
    if jax.process_index() == 0:
        print(message, flush=True)


def eval_source(config, name: str | None = None, split: str | None = None):
    """(source, the evaluation recipe): the run's eval split, or split ``split`` of the
    source ``name`` (a ``data.source`` string) read as the run reads its own."""
    data = config.data
    source = sources.get_source(name or data.source, split or data.eval_split,
                                data_dir=data.get("data_dir"),
                                image_size=data.get("image_size"))
    recipe = recipes.make_recipe("eval", size=data.crop_size,
                                 resize_size=data.eval_resize_size,
                                 normalization=data.recipe_kwargs.normalization)
    return source, recipe


def _first_examples(config, count: int, batch_size: int):
    """Yields (images, labels) numpy batches of the eval split until ``count`` examples
    (the last batch cut to it), as the evaluation job transforms them."""
    source, recipe = eval_source(config)
    if count > source.num_examples:
        raise ValueError(f"the {source.split} split has {source.num_examples} examples, "
                         f"fewer than the {count} asked for.")
    left = count
    for batch in pipeline.eval_batches(source, recipe, global_batch_size=batch_size,
                                       process_index=0, process_count=1):
        keep = min(left, int(np.asarray(batch["mask"]).sum()))
        yield np.asarray(batch["image"])[:keep], np.asarray(batch["label"])[:keep]
        left -= keep
        if left == 0:
            return


def eval_images(config, num_images: int) -> np.ndarray:
    """The first ``num_images`` of the eval split, as the evaluation job transforms them."""
    return np.concatenate([images for images, _ in
                           _first_examples(config, num_images, num_images)])


def representation(backbone, variables, images):
    """[B, H, W, 3] → [B, D]: the representation the evaluation job probes."""
    return common.pooled(backbone.apply(variables, images, train=False))


def projector_embedder(config, saved):
    """``images [B, H, W, 3] → [B, D']``: the output of the method's projector head (the
    embedding the Déjà vu paper attacks by default), for the methods whose network is a
    backbone with a projector (``common.Network``: SimCLR, VICReg, Barlow Twins, BYOL's
    and MoCo v3's online networks, ...). ``saved``: ``eval_job.restore_run``'s state."""
    method = methods.get(config.method)
    try:
        net = method.network(config, None)
    except TypeError:  # a network built from other arguments (MAE, I-JEPA): no projector
        net = None
    if not isinstance(net, common.Network):
        raise ValueError(f"--embedding=projector: {config.method}'s network has no projector "
                         "head to read; use --embedding=backbone.")
    variables = {"params": saved["params"]}
    if "batch_stats" in saved["method_state"]:
        variables["batch_stats"] = saved["method_state"]["batch_stats"]
    return lambda images: net.apply(variables, images, train=False)[1]


def _show(image: np.ndarray) -> np.ndarray:
    """A normalised image back to [0, 1] for display (min-max per image)."""
    low, high = image.min(), image.max()
    return (image - low) / max(high - low, 1e-8)


def run(tool: str, workdir: str, *, step: int | None = None, num_images: int = 4,
        num_masks: int = 3000, pixel: tuple[int, int] | None = None, query_image: int = 0,
        threshold: float = 0.6, num_points: int = 2000, curation: dict | None = None,
        memorisation: dict | None = None, seed: int = 0) -> dict:
    """Runs ``tool`` and writes its outputs; returns the JSON's dict (with the paths).

    ``curation`` (curate): {"pool": source, "pool_split", "seed_set": source,
    "seed_split"} and ``curate.curate``'s keywords (mode, threshold, neighbours, k,
    num_clusters, per_cluster). ``memorisation`` (dejavu; WORKDIR's model is the
    target): {"reference_workdir", "attack_set": an ``npz:`` source with ``boxes`` or a
    ``folder:`` one, "boxes" (the folder's VOC box files), "attack_split", "public_set",
    "public_split", "min_side" (None: a quarter of an npz's shorter side, 100 px for a
    folder), "k", "embedding" ("backbone", or "projector": ``projector_embedder``)}.
    """
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; choose one of {', '.join(TOOLS)}.")
    if tool == "embed-map":
        embed_map.require_libraries()
    if tool == "curate" and not all((curation or {}).get(k) for k in ("pool", "seed_set")):
        raise ValueError("curate needs --pool (the uncurated source) and --seed_set (the "
                         "curated one), e.g. --pool=folder:/data/pool --seed_set=fashion_mnist.")
    if tool == "dejavu" and not all((memorisation or {}).get(k) for k in (
            "reference_workdir", "attack_set", "public_set")):
        raise ValueError("dejavu needs --reference_workdir (the model that did not see the "
                         "attacked images), --attack_set (an npz: source with boxes, or a "
                         "folder: one with --boxes) and "
                         "--public_set (the labelled set the kNN reads).")
    embedding = (memorisation or {}).get("embedding", "backbone")
    if tool == "dejavu" and embedding not in ("backbone", "projector"):
        raise ValueError(f"--embedding={embedding!r}: 'backbone' or 'projector'.")
    config, step, backbone, variables = eval_job.restore_backbone(workdir, step)
    if tool in ("attention", "patch-similarity"):
        maps.require_vit(backbone, tool)
    if tool == "patch-similarity" and not 0 <= query_image < num_images:
        raise ValueError(f"--query_image={query_image} is not one of the {num_images} images "
                         f"(0 … {num_images - 1}).")
    images = (None if tool in ("embed-map", "curate", "dejavu")
              else eval_images(config, num_images))
    if pixel is not None:
        maps.pixel_to_patch(pixel, images.shape[1:3], backbone.patch_size)  # checks it
    plt = None if tool == "curate" else eval_layers.pyplot("the analysis pictures")
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
        out.update(_relax(plt, save, backbone, variables, images, num_masks, seed))
    elif tool == "attention":
        out.update(_attention(plt, save, backbone, variables, images, threshold))
    elif tool == "patch-similarity":
        out.update(_patch_similarity(plt, save, backbone, variables, images, pixel,
                                     query_image))
    elif tool == "embed-map":
        out.update(_embed_map(plt, save, config, backbone, variables, num_points, seed))
    elif tool == "curate":
        out.update(_curate(config, backbone, variables, f"{prefix}_curated.txt", seed=seed,
                           **curation))
    else:
        out.update(_dejavu(plt, save, workdir, config, step, **memorisation))
    with tf.io.gfile.GFile(f"{prefix}.json", "w") as f:
        json.dump(out, f)
    written = out["pictures"] + ([out["curated_list"]] if "curated_list" in out else [])
    _log(f"{tool}: wrote {', '.join(written)} and {prefix}.json")
    return out


def _relax(plt, save, backbone, variables, images, num_masks, seed) -> dict:
    embed = jax.jit(functools.partial(representation, backbone, variables))
    out = []
    for i, image in enumerate(images):
        _log(f"relax: image {i + 1}/{len(images)}")
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
        out.append({k: np.asarray(result[k]).round(6).tolist()
                    for k in ("importance", "uncertainty", "u_relax")})
    return {"images": out}


def _attention(plt, save, backbone, variables, images, threshold) -> dict:
    attention = np.asarray(maps.cls_attention(backbone, variables, images))
    kept = maps.keep_mass(attention, threshold)
    count, heads = attention.shape[:2]
    fig, axes = plt.subplots(count, heads + 2, figsize=(2 * (heads + 2), 2 * count),
                             squeeze=False)
    for i in range(count):
        axes[i, 0].imshow(_show(images[i]))
        for h in range(heads):
            axes[i, h + 1].imshow(attention[i, h], cmap="inferno")
            axes[i, h + 1].contour(kept[i, h], levels=[0.5], colors="white", linewidths=0.8)
        axes[i, -1].imshow(attention[i].mean(0), cmap="inferno")
        for ax in axes[i]:
            ax.axis("off")
    for h in range(heads):
        axes[0, h + 1].set_title(f"head {h}")
    axes[0, -1].set_title("mean")
    save(fig, "heads")
    return {"threshold": threshold, "attention": attention.round(6).tolist(),
            "kept_fraction_of_patches": kept.mean(axis=(-2, -1)).round(4).tolist()}


def _patch_similarity(plt, save, backbone, variables, images, pixel, query_image) -> dict:
    if pixel is None:  # the query image's centre
        pixel = (images.shape[1] // 2, images.shape[2] // 2)
    patch = maps.pixel_to_patch(pixel, images.shape[1:3], backbone.patch_size)
    features = maps.patch_features(backbone, variables, images)
    similarity = np.asarray(maps.similarity_maps(features, query_image, patch))
    count = len(images)
    fig, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.4), squeeze=False)
    for i in range(count):
        axes[0, i].imshow(_show(images[i]))
        axes[1, i].imshow(similarity[i], cmap="viridis", vmin=-1, vmax=1)
        for ax in axes[:, i]:
            ax.axis("off")
    axes[0, query_image].scatter([pixel[1]], [pixel[0]], c="red", s=30, marker="x")
    axes[0, query_image].set_title("query")
    save(fig, "maps")
    return {"pixel": list(pixel), "patch": list(patch), "query_image": query_image,
            "similarity": similarity.round(6).tolist()}


def _embed_map(plt, save, config, backbone, variables, num_points, seed) -> dict:
    embed = jax.jit(functools.partial(representation, backbone, variables))
    features, labels = [], []
    for images, batch_labels in _first_examples(config, num_points, batch_size=256):
        features.append(np.asarray(embed(images), np.float32))
        labels.append(batch_labels)
        _log(f"embed-map: features of {sum(map(len, labels))}/{num_points} images")
    labels = np.concatenate(labels)
    sizes = tuple(sorted({max(num_points // d, embed_map.NEIGHBOURS + 2) for d in (8, 4, 2, 1)}))
    result = embed_map.compare(np.concatenate(features), labels, sizes=sizes, seed=seed,
                               log=_log)
    class_names = eval_source(config)[0].class_names or tuple(
        str(c) for c in range(labels.max() + 1))
    _draw_maps(plt, save, result, labels, class_names)
    _draw_times(plt, save, result)
    table = {method: {"trustworthiness": r["trustworthiness"], "kNN": r["kNN"],
                      "outliers": r["outliers"], "noise": r["noise"],
                      "seconds": {str(n): s for n, s in r["seconds"].items()}}
             for method, r in result["maps"].items()}
    mapper = result["maps"]["Mapper"]["graph"]
    return {"points": result["points"], "features": result["features"],
            "umap_compile_seconds": result["umap_compile_seconds"], "maps": table,
            "mapper": {"nodes": len(mapper["nodes"]), "edges": len(mapper["edges"]),
                       "covered": mapper["covered"]},
            "coordinates": {m: np.round(r["points"], 4).tolist()
                            for m, r in result["maps"].items()},
            "labels": labels.tolist()}


def format_table(out: dict) -> str:
    """embed-map's JSON → a Markdown table: each map's trustworthiness and kNN accuracy,
    clean, with outliers and with noise, and its wall times."""
    sizes = list(next(iter(out["maps"].values()))["seconds"])
    rows = [f"| map | trust. | kNN | trust. +5% outliers | kNN +5% outliers | trust. +noise "
            f"| kNN +noise | {' | '.join(f's @ {n}' for n in sizes)} |",
            "|---" * (7 + len(sizes)) + "|"]
    for method, r in out["maps"].items():
        cells = [r["trustworthiness"], r["kNN"], r["outliers"]["trustworthiness"],
                 r["outliers"]["kNN"], r["noise"]["trustworthiness"], r["noise"]["kNN"]]
        rows.append(f"| {method} | " + " | ".join(f"{c:.3f}" for c in cells) + " | "
                    + " | ".join(f"{r['seconds'][n]:.2f}" for n in sizes) + " |")
    return "\n".join(rows) + (
        f"\n\n{out['points']} points, {embed_map.NEIGHBOURS} neighbours; kNN in the features "
        f"themselves {out['features']['kNN']:.3f}; UMAP's one-off compilation "
        f"{out['umap_compile_seconds']:.0f} s, not in its times.")


def _curate(config, backbone, variables, listing: str, *, pool: str, seed_set: str,
            pool_split: str = "train", seed_split: str = "train", seed: int = 0,
            **options) -> dict:
    mesh = parallel.data_mesh()
    embed = functools.partial(representation, backbone, variables)
    found = {}
    for role, name, split in (("pool", pool, pool_split), ("seed set", seed_set, seed_split)):
        source, recipe = eval_source(config, name, split)
        _log(f"curate: embedding the {role}, {source.name} {split} ({source.num_examples} "
             "images)")
        found[role] = source, eval_features.extract(embed, source, recipe, mesh)[0]
    pool_source, pool_features = found["pool"]
    out = curate.curate(pool_features, found["seed set"][1], mesh, seed=seed, log=_log,
                        **options)
    paths = getattr(pool_source, "paths", None)
    with tf.io.gfile.GFile(listing, "w") as f:
        f.write("".join(f"{i}\t{paths[i]}\n" if paths is not None else f"{i}\n"
                        for i in out["curated"]))
    out.update(pool=f"{pool_source.name} {pool_split}", pool_size=len(pool_features),
               seed_set=f"{found['seed set'][0].name} {seed_split}",
               seed_set_size=len(found["seed set"][1]), curated_list=listing,
               options={**options, "seed": seed})
    if paths is not None:
        out["duplicate_group_paths"] = [[str(paths[i]) for i in group]
                                        for group in out["duplicate_groups"]]
    return out


def _folder_boxes(source, boxes_dir: str):
    """Each image's boxes and (height, width) from its VOC file: ``boxes_dir``/
    Annotation/<class>/<image>.xml as ImageNet's bboxes_annotations unpack, or
    ``boxes_dir``/<class>/<image>.xml."""
    boxes, shapes = [], []
    for path in source.paths:
        parts = os.path.normpath(path).split(os.sep)
        name = f"{os.path.splitext(parts[-1])[0]}.xml"
        candidates = [os.path.join(boxes_dir, "Annotation", parts[-2], name),
                      os.path.join(boxes_dir, parts[-2], name)]
        found = next((c for c in candidates if tf.io.gfile.exists(c)), None)
        if found is None:
            raise FileNotFoundError(
                f"{path} has no box file ({' or '.join(candidates)}): the attack set "
                "must hold only images with boxes (dejavu.partition's bbox_A or bbox_B).")
        with tf.io.gfile.GFile(found) as f:
            image_boxes, shape = dejavu.voc_boxes(f.read())
        if shape is None:  # the file gives no size: read it from the image
            shape = tuple(tf.shape(sources.decode_image(tf.io.read_file(path)))[:2].numpy())
        boxes.append(image_boxes)
        shapes.append(shape)
    return boxes, np.asarray(shapes)


def _attack_images(name: str, split: str, boxes_dir: str | None):
    """(source, each image's boxes, shapes [N, 2], the default ``min_side``) of the
    attacked images: an ``npz:`` source with a ``boxes`` array ([N, 4] or [N, M, 4],
    rows of -1 ignored; a quarter of the shorter side) or a ``folder:`` source with
    ``boxes_dir`` (the official 100 px)."""
    if name.startswith("folder:") and boxes_dir:
        source = sources.get_source(name, split)
        return (source, *_folder_boxes(source, boxes_dir), dejavu.OFFICIAL_MIN_SIDE)
    if not name.startswith("npz:"):
        raise ValueError(f"--attack_set={name!r}: the attacked images need their object "
                         "boxes: an npz: source with a 'boxes' array, or a folder: source "
                         "with --boxes (a folder of VOC .xml box files).")
    path = sources.npz_path(name, split)
    arrays = sources.read_npz(path)
    if "boxes" not in arrays:
        raise ValueError(f"{path} has no 'boxes' array ([N, 4] or [N, M, 4] of y0, x0, "
                         "y1, x1 pixels, end-exclusive) for the attacked images.")
    images = arrays["images"]
    boxes = arrays["boxes"].reshape(len(images), -1, 4)
    boxes = [b[(b >= 0).all(axis=1)] for b in boxes]
    source = sources.array_source(name, split, images, arrays["labels"],
                                  arrays["class_names"].tolist())
    shapes = np.tile(images.shape[1:3], (len(images), 1))
    return source, boxes, shapes, dejavu.default_min_side(*images.shape[1:3])


def _dejavu(plt, save, workdir, config, step, *, reference_workdir: str, attack_set: str,
            public_set: str, attack_split: str = "train", public_split: str = "train",
            boxes: str | None = None, min_side: int | None = None,
            k: int = dejavu.NEIGHBOURS, embedding: str = "backbone") -> dict:
    mesh = parallel.data_mesh()
    source, image_boxes, shapes, default_min_side = _attack_images(attack_set, attack_split,
                                                                   boxes)
    min_side = default_min_side if min_side is None else min_side
    crop_boxes, attacked = dejavu.periphery_boxes(image_boxes, shapes, min_side=min_side)
    crop_source = sources.crops_of(source, attacked, crop_boxes)
    num_classes = source.num_classes
    embeddings, models = {}, {}
    for role, run_dir in (("target", workdir), ("reference", reference_workdir)):
        run_step = step if role == "target" else None
        if embedding == "projector":
            run_config, run_step, saved = eval_job.restore_run(run_dir, run_step)
            embed = projector_embedder(run_config, saved)
        else:
            run_config, run_step, backbone, variables = eval_job.restore_backbone(run_dir,
                                                                                  run_step)
            embed = functools.partial(representation, backbone, variables)
        public_source, recipe = eval_source(run_config, public_set, public_split)
        _log(f"dejavu: the {role} ({run_dir}, step {run_step}) embeds {len(attacked)} "
             f"periphery crops and {public_source.num_examples} public images")
        embeddings[role] = (eval_features.extract(embed, crop_source, recipe, mesh)[0],
                            eval_features.extract(embed, public_source, recipe, mesh)[0])
        models[role] = {"workdir": run_dir, "step": run_step}
    result = dejavu.attack(embeddings, crop_source.labels, public_source.labels, mesh,
                           num_classes=num_classes, k=k)
    scores = result["scores"]
    _log(f"dejavu: memorised {scores['memorised']:.1%} of {len(attacked)} attacked images "
         f"(target right, reference wrong); target accuracy {scores['target_accuracy']:.1%}, "
         f"reference {scores['reference_accuracy']:.1%}")
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for role in ("target", "reference"):
        ax.plot(result["fractions"], result["curves"][role], marker="o", label=role)
    ax.axhline(1 / num_classes, color="0.6", ls="--", label="chance")
    ax.set(xlabel="fraction of most confident attacked images",
           ylabel="kNN accuracy from the background", ylim=(0, 1))
    ax.legend(fontsize="small")
    save(fig, "curves")
    return {"models": models, "embedding": embedding,
            "attack_set": f"{attack_set} {attack_split}",
            "public_set": f"{public_set} {public_split}", "min_side": min_side, "k": k,
            "attacked": attacked.tolist(), "attacked_of": source.num_examples,
            "crops": crop_boxes.tolist(), **result}


def _draw_maps(plt, save, result, labels, class_names):
    """The four maps side by side, points (Mapper: nodes) coloured by label."""
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "turbo")
    norm = plt.Normalize(0, max(len(class_names) - 1, 1))
    fig, axes = plt.subplots(1, len(embed_map.MAPS), figsize=(4.2 * len(embed_map.MAPS), 4.4))
    for ax, (method, r) in zip(axes, result["maps"].items(), strict=True):
        if r["graph"] is None:
            ax.scatter(*r["points"].T, c=colours(norm(labels)), s=4, linewidths=0)
        else:
            graph = r["graph"]
            positions = graph["positions"]
            for i, j in graph["edges"]:
                ax.plot(*positions[[i, j]].T, c="0.7", lw=0.6, zorder=1)
            majority = [np.bincount(labels[m]).argmax() for m in graph["nodes"]]
            sizes = [4 + 2 * len(m) for m in graph["nodes"]]
            ax.scatter(*positions.T, c=colours(norm(np.array(majority))), s=sizes,
                       edgecolors="k", linewidths=0.3, zorder=2)
        ax.set_title(f"{method}: trust. {r['trustworthiness']:.2f}, kNN {r['kNN']:.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
    if len(class_names) <= 10:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colours(norm(c)), label=name)
                   for c, name in enumerate(class_names)]
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02),
                   ncol=len(class_names), frameon=False)
    save(fig, "maps")


def _draw_times(plt, save, result):
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for method, r in result["maps"].items():
        sizes = sorted(r["seconds"])
        ax.plot(sizes, [r["seconds"][n] for n in sizes], marker="o", label=method)
    ax.set(xscale="log", yscale="log", xlabel="points", ylabel="wall time (s)")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    save(fig, "times")
