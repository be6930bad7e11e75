"""The evaluation job's command line (the job itself: ``job.py``).

    python -m jax_ssl.evaluate --workdir /tmp/run [--step N] [--nobaselines]
"""
from __future__ import annotations

import sys

import jax

from jax_ssl.evaluate.job import evaluate, format_table


def main(argv):
    from absl import flags, logging

    del argv
    logging.set_verbosity(logging.ERROR)  # Orbax warns that a read-only manager is read-only
    out = evaluate(flags.FLAGS.workdir, step=flags.FLAGS.step,
                   baselines=flags.FLAGS.baselines, batch_size=flags.FLAGS.batch_size)
    if jax.process_index() == 0:
        print(f"step {out['step']} of {flags.FLAGS.workdir}: top-1 accuracy on the eval split")
        print(format_table(out["results"]))


def cli():
    """Console script ``jax-ssl-eval``."""
    from absl import app, flags

    flags.DEFINE_string("workdir", None, "The training run's --workdir.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest complete one).")
    flags.DEFINE_bool("baselines", True, "Also evaluate a random backbone and raw pixels.")
    flags.DEFINE_integer("batch_size", 512, "Global batch of the feature extraction.")
    flags.mark_flags_as_required(["workdir"])
    app.run(main)


if __name__ == "__main__":
    sys.exit(cli())
