"""`make demo`: pretrain on Fashion-MNIST on this machine's CPU, then evaluate the backbone.

    python experiments/demo.py [--workdir runs/demo] [--config configs/X.py]

Pretrains the demo config (Orbax checkpoints in WORKDIR/checkpoints; running it again
resumes or, when finished, only re-evaluates), then prints the evaluation table: kNN
and linear probe with all, 10%, 1% and 5-per-class of the labels for the pretrained
backbone, a randomly initialised one and raw pixels, and the pretrained backbone's per-layer
probes (table and plot in WORKDIR/eval/), and ends with two analysis pictures in
WORKDIR/analysis/ (jax-ssl-analyze's): the CLS attention of a ViT (RELAX of any other
backbone) and the embedding maps of 1000 test images with their table. Falls back to
the bundled digits, saying so, when Fashion-MNIST can be neither found nor fetched. What
it printed goes, with the date, the machine and the commit, to WORKDIR/demo_run.md: the
record the README's demo numbers are copied from (experiments/demo_runs/ keeps the ones
it quotes).
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # noqa: E402

from jax_ssl import train  # noqa: E402
from jax_ssl.analysis import embed_map  # noqa: E402
from jax_ssl.analysis import job as analysis  # noqa: E402
from jax_ssl.config import from_file  # noqa: E402
from jax_ssl.evaluate import layers  # noqa: E402
from jax_ssl.evaluate.job import evaluate, format_table  # noqa: E402

EMBED_MAP_POINTS = 1000  # t-SNE and UMAP take ~10 s each at 2000 points on 2 cores
CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def fashion_mnist_available() -> bool:
    from jax_ssl.data import fashion_mnist
    try:
        fashion_mnist.load()
    except (OSError, RuntimeError, ValueError) as e:
        print(f"Fashion-MNIST is not available ({str(e).splitlines()[0]}); the demo falls "
              "back to the bundled digits.")
        return False
    return True


def machine() -> str:
    """CPU model and count, OS, Python and JAX versions: what the timings depend on."""
    import jax

    model = next((line.split(":", 1)[1].strip() for line in
                  pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return (f"{os.cpu_count()} x {model}; {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}; jax {jax.__version__} "
            f"({jax.default_backend()}, {jax.device_count()} device(s))")


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=CONFIGS.parent).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if git("status", "--porcelain") else "")


def provenance() -> str:
    """A record's date, commit and machine lines (markdown list items)."""
    import datetime

    return (f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
            f"- commit: {commit()}\n- machine: {machine()}\n")


def write_record(path, command: str, report: str, details: str = "") -> None:
    """A run's record: the command as its title, ``provenance``, ``details`` (more
    list items) and the report."""
    pathlib.Path(path).write_text(f"# {command}\n\n{provenance()}{details}\n{report}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument("--config", default=None, help="default: the Fashion-MNIST demo")
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    config_path = args.config
    if config_path is None:
        config_path = CONFIGS / ("simclr_fashion_mnist.py" if fashion_mnist_available()
                                 else "simclr_digits.py")
    config = from_file(config_path)
    workdir = args.workdir if args.config or "fashion" in str(config_path) else (
        args.workdir + "_digits")
    start = time.perf_counter()
    train.train(config, workdir)
    trained = time.perf_counter()
    print(f"\npretraining took {trained - start:.0f} s; evaluating {workdir} ...")
    result = evaluate(workdir, per_layer=True)
    evaluated = time.perf_counter()
    print(f"\nevaluation took {evaluated - trained:.0f} s; the analysis pictures ...")
    has_cls = (config.model.backbone.startswith("vit")
               and config.model.backbone_kwargs.get("class_token", True))
    picture = analysis.run("attention", workdir) if has_cls else analysis.run(
        "relax", workdir, num_images=1)
    maps = analysis.run("embed-map", workdir, num_points=EMBED_MAP_POINTS)
    done = time.perf_counter()
    report = "\n".join([
        f"{config.method} on {config.data.source}, step {result['step']}: top-1 accuracy "
        f"(%) on the {config.data.eval_split} split",
        format_table(result["results"]),
        f"\nper-layer probes of the pretrained backbone (all labels; plot in {workdir}/eval/):",
        layers.format_layer_table(result["per_layer"]),
        f"\nembedding maps of the first {EMBED_MAP_POINTS} {config.data.eval_split} images "
        f"(trustworthiness and kNN accuracy in the map, {embed_map.NEIGHBOURS} "
        "neighbours; the same with 5% outliers and with Gaussian noise added; wall time "
        "in s by number of points):",
        analysis.format_table(maps),
        f"\npictures: {', '.join(picture['pictures'] + maps['pictures'])}",
        f"\npretraining {trained - start:.0f} s, evaluation {evaluated - trained:.0f} s, "
        f"analysis {done - evaluated:.0f} s, total {done - start:.0f} s"])
    print("\n" + report)
    record = pathlib.Path(workdir) / "demo_run.md"
    record.write_text(
        f"# experiments/demo.py --workdir {workdir}\n\n"
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"- config: {config_path}\n- commit: {commit()}\n- machine: {machine()}\n\n"
        f"```\n{report}\n```\n")
    print(f"(recorded in {record})")


if __name__ == "__main__":
    main()
