"""Benchmark of the input pipeline against a PyTorch-DataLoader-style PIL pipeline.

Usage::

    python experiments/bench/input.py [--only simclr,dino] [--images 256] [--batch 64]
                                      [--seconds 10] [--workers N] [--markdown]

Both sides run the same recipe on the same folder of generated 500×375 JPEGs (natural-
looking smooth colour fields with edges and texture, quality 90, ~60 KB, made once and
kept in ``--folder``):

* ``jax_ssl``: ``sources.image_folder`` + ``recipes.make_recipe`` +
  ``pipeline.train_batches`` (tf.data, all cores);
* ``PIL``: the torchvision transforms of the recipe re-written with PIL and NumPy
  (RandomResizedCrop with torchvision's sampling, flip, ColorJitter in random order
  through ImageEnhance and an HSV hue shift, RandomGrayscale, PIL GaussianBlur,
  solarize, ToTensor + Normalize), run by ``multiprocessing.Pool(workers)`` over the
  files and collated into NumPy batches, as a DataLoader with that many workers does.

Recipes: ``simclr`` (2 × 224, SimCLR's jitter/grey/blur), ``dino`` (2 × 224 + 10 × 96,
DINO's multi-crop) and ``simclr28``, the Fashion-MNIST demo's recipe (2 × 28, crops
(0.8, 1), jitter at half strength, no blur) on the JPEGs shrunk to 28×28 greyscale and
held in memory, as the demo's source holds Fashion-MNIST (no decoding on either side).
"img/s" counts source images (each giving 2 or 12 crops) over at least ``--seconds``
after a warm-up batch; "per core" divides by the cores used (tf.data uses all; the pool
uses ``--workers``, default all).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image, ImageEnhance, ImageFilter, ImageOps  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import benchlib  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

# recipe -> list of views: (size, scale, interpolation, blur p, solarize p, jitter strengths)
SIMCLR_JITTER, DINO_JITTER = (0.8, 0.8, 0.8, 0.2), (0.4, 0.4, 0.2, 0.1)
VIEWS = {
    "simclr": [(224, (0.08, 1.0), Image.BILINEAR, 0.5, 0.0, SIMCLR_JITTER)] * 2,
    "dino": [(224, (0.4, 1.0), Image.BICUBIC, 1.0, 0.0, DINO_JITTER),
             (224, (0.4, 1.0), Image.BICUBIC, 0.1, 0.2, DINO_JITTER)]
            + [(96, (0.05, 0.4), Image.BICUBIC, 0.5, 0.0, DINO_JITTER)] * 10,
    "simclr28": [(28, (0.8, 1.0), Image.BILINEAR, 0.0, 0.0, (0.4, 0.4, 0.4, 0.1))] * 2,
}
TF_RECIPES = {"simclr": ("simclr", dict(size=224)),
              "dino": ("multicrop", dict(style="dino", num_local=10)),
              "simclr28": ("simclr", dict(size=28, scale=(0.8, 1.0), blur=0.0, strength=0.5))}
SMALL_SIDE = {"simclr28": 28}  # recipes run on in-memory greyscale images of this side


def make_jpegs(folder: pathlib.Path, count: int) -> None:
    """``count`` 500×375 JPEGs in 4 class folders, written atomically (skipped if there)."""
    if (folder / "done").exists():
        return
    rng = np.random.default_rng(0)
    for i in range(count):
        low = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)  # smooth colour field
        image = np.asarray(Image.fromarray(low).resize((500, 375), Image.BICUBIC), np.float32)
        yy, xx = np.mgrid[:375, :500]
        stripes = 40 * np.sin(xx / rng.uniform(3, 30) + yy / rng.uniform(3, 30))
        image = image + stripes[..., None] + rng.normal(0, 8, image.shape)
        image[rng.integers(0, 300):, rng.integers(0, 400):] *= 0.5  # an edge
        path = folder / f"class{i % 4}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(f, "JPEG",
                                                                          quality=90)
        os.replace(f.name, path)
    (folder / "done").touch()


# --- the PIL + NumPy side --------------------------------------------------------------

def crop_box(rng, width, height, scale, ratio=(3 / 4, 4 / 3)):
    """torchvision RandomResizedCrop.get_params: (left, top, w, h)."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, width - w + 1), rng.integers(0, height - h + 1), w, h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def shift_hue(image, delta):
    hsv = np.asarray(image.convert("HSV"), np.uint8).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(delta * 255)) % 256  # torchvision's
    return Image.fromarray(hsv, "HSV").convert("RGB")


def jitter(rng, image, strengths):
    ops = [lambda im, f: ImageEnhance.Brightness(im).enhance(f),
           lambda im, f: ImageEnhance.Contrast(im).enhance(f),
           lambda im, f: ImageEnhance.Color(im).enhance(f),
           shift_hue]
    for i in rng.permutation(4):
        s = strengths[i]
        factor = rng.uniform(-s, s) if i == 3 else rng.uniform(max(0, 1 - s), 1 + s)
        image = ops[i](image, factor)
    return image


def pil_view(rng, image, size, scale, interpolation, blur, solarize, strengths):
    left, top, w, h = crop_box(rng, *image.size, scale)
    x = image.resize((size, size), interpolation, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        x = ImageOps.mirror(x)
    if rng.random() < 0.8:
        x = jitter(rng, x, strengths)
    if rng.random() < 0.2:
        x = ImageOps.grayscale(x).convert("RGB")
    if rng.random() < blur:
        x = x.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.1, 2.0)))
    if rng.random() < solarize:
        x = ImageOps.solarize(x, 128)
    return (np.asarray(x, np.float32) / 255.0 - MEAN) / STD


def pil_example(job):
    item, recipe, seed = job  # a JPEG's path, or a small greyscale image
    rng = np.random.default_rng(seed)
    if isinstance(item, np.ndarray):
        image = Image.fromarray(item).convert("RGB")
    else:
        with Image.open(item) as f:
            image = f.convert("RGB")
    return [pil_view(rng, image, *view) for view in VIEWS[recipe]]


def run_pil(items, recipe, batch, seconds, workers):
    def jobs():
        i = 0
        while True:
            yield items[i % len(items)], recipe, i
            i += 1

    with multiprocessing.Pool(workers) as pool:
        results = pool.imap(pil_example, jobs(), chunksize=8)
        collate = lambda: [np.stack(v) for v in zip(*(next(results) for _ in range(batch)),  # noqa: E731
                                                   strict=True)]
        collate()  # warm-up
        start, images = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            collate()
            images += batch
        elapsed = time.perf_counter() - start
        pool.terminate()
    return images / elapsed


# --- the jax_ssl side ------------------------------------------------------------------

def small_images(paths, side):
    """The JPEGs shrunk to ``side``×``side`` greyscale: uint8 [N, side, side]."""
    return np.stack([np.asarray(Image.open(p).convert("L").resize((side, side), Image.BILINEAR))
                     for p in paths])


def run_tf(folder, recipe, batch, seconds, images=None):
    import tensorflow as tf

    from jax_ssl.data import pipeline, recipes, sources

    if images is None:
        source = sources.image_folder(str(folder))
    else:
        held = tf.constant(images)
        source = sources.IndexedSource(
            "small", "train", np.arange(len(images), dtype=np.int32) % 4, 4,
            lambda i: tf.image.grayscale_to_rgb(tf.gather(held, i)[..., None]), greyscale=True)
    name, kwargs = TF_RECIPES[recipe]
    batches = pipeline.train_batches(source, recipes.make_recipe(name, **kwargs),
                                     global_batch_size=batch, seed=0, process_index=0,
                                     process_count=1).as_numpy_iterator()
    next(batches)  # warm-up
    start, images = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        next(batches)
        images += batch
    return images / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--folder", default="/tmp/jax_ssl_bench_jpegs")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    folder = pathlib.Path(args.folder)
    make_jpegs(folder, args.images)
    paths = sorted(str(p) for p in folder.glob("class*/*.jpg"))
    cores = os.cpu_count()
    rows = []
    for recipe in benchlib.selected_names(parser, list(VIEWS), args.only):
        small = small_images(paths, SMALL_SIDE[recipe]) if recipe in SMALL_SIDE else None
        pil = run_pil(paths if small is None else list(small), recipe, args.batch,
                      args.seconds, args.workers)
        tf_rate = run_tf(folder, recipe, args.batch, args.seconds, small)
        crops = len(VIEWS[recipe])
        rows.append([recipe, f"{crops}", "jax_ssl (tf.data)", f"{cores}", f"{tf_rate:.1f}",
                     f"{tf_rate / cores:.1f}", f"{(tf_rate / cores) / (pil / args.workers):.2f}"])
        rows.append([recipe, f"{crops}", "PIL + NumPy pool", f"{args.workers}", f"{pil:.1f}",
                     f"{pil / args.workers:.1f}", "1.00"])
    import tensorflow as tf
    print(f"{len(paths)} JPEGs of 500x375 in {folder}; batch {args.batch}; TF {tf.__version__},"
          f" Pillow {PIL.__version__}, {cores} cores")
    table = benchlib.markdown_table if args.markdown else benchlib.plain_table
    print(table(["recipe", "crops", "pipeline", "cores", "img/s", "img/s/core",
                 "vs PIL per core"], rows, 3))


if __name__ == "__main__":
    main()
