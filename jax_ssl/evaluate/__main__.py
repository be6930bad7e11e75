r"""The evaluation job's command line (the job itself: ``job.py``; watch mode: ``watch.py``).

    python -m jax_ssl.evaluate --workdir /tmp/run [--step N] [--nobaselines] \
        [--per_layer] [--protocol fast|dino|mae|simclr] [--protocol_epochs E] \
        [--dtype bfloat16] [--watch --poll_seconds 60 --max_idle_polls K]
"""
from __future__ import annotations

import sys

import jax

from jax_ssl.evaluate import layers, protocols
from jax_ssl.evaluate.job import evaluate, format_table


def _print_result(workdir: str, out: dict):
    if jax.process_index() != 0:
        return
    print(f"step {out['step']} of {workdir} ({out['dtype']}): top-1 accuracy on the eval "
          "split")
    print(format_table(out["results"]))
    if "per_layer" in out:
        print(layers.format_layer_table(out["per_layer"]))
    if "linear_protocol" in out:
        p = out["linear_protocol"]
        print(f"{p['protocol']} linear-probe protocol ({p['epochs']} epochs, batch "
              f"{p['batch_size']}, lr {p['learning_rate']:.3g}): top-1 {100 * p['top1']:.1f}%")


def main(argv):
    from absl import flags, logging

    del argv
    logging.set_verbosity(logging.ERROR)  # Orbax warns that a read-only manager is read-only
    f = flags.FLAGS
    protocol_kwargs = {"epochs": f.protocol_epochs} if f.protocol_epochs else {}
    kwargs = dict(baselines=f.baselines, batch_size=f.batch_size, per_layer=f.per_layer,
                  vit_token=f.vit_token, protocol=f.protocol, protocol_kwargs=protocol_kwargs,
                  dtype=f.dtype)
    if f.watch:
        from jax_ssl.evaluate import watch

        def evaluate_and_print(step):
            out = evaluate(f.workdir, step=step, **kwargs)
            _print_result(f.workdir, out)
            return out
        watch.watch(f.workdir, evaluate=evaluate_and_print, poll_seconds=f.poll_seconds,
                    max_idle_polls=f.max_idle_polls)
        return
    _print_result(f.workdir, evaluate(f.workdir, step=f.step, **kwargs))


def cli():
    """Console script ``jax-ssl-eval``."""
    from absl import app, flags

    flags.DEFINE_string("workdir", None, "The training run's --workdir.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest complete one).")
    flags.DEFINE_bool("baselines", True, "Also evaluate a random backbone and raw pixels.")
    flags.DEFINE_integer("batch_size", 512, "Global batch of the feature extraction (and of "
                         "a protocol's training).")
    flags.DEFINE_bool("per_layer", False, "Also kNN and linear probes of every ResNet stage "
                      "/ ViT block, with a plot in WORKDIR/eval/.")
    flags.DEFINE_enum("vit_token", "cls", list(layers.VIT_TOKENS), "Per-layer ViT "
                      "representation: the normed CLS token (DINO) or mean patch token (MAE).")
    flags.DEFINE_enum("protocol", "fast", list(protocols.NAMES), "Linear probe: 'fast' "
                      "(L-BFGS on precomputed features) or also an official protocol.")
    flags.DEFINE_integer("protocol_epochs", None, "Epochs of the official protocol (default: "
                         "its own, 100 or 90).")
    flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "Compute dtype of the backbone "
                      "(default: the run's); features are float32 either way.")
    flags.DEFINE_bool("watch", False, "Keep polling WORKDIR/checkpoints and evaluate each new "
                      "complete checkpoint once (ignores --step).")
    flags.DEFINE_float("poll_seconds", 60.0, "Watch mode: seconds between listings.")
    flags.DEFINE_integer("max_idle_polls", None, "Watch mode: stop after this many listings "
                         "in a row found nothing new (default: never).")
    flags.mark_flags_as_required(["workdir"])
    app.run(main)


if __name__ == "__main__":
    sys.exit(cli())
