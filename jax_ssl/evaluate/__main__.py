"""``python -m jax_ssl.evaluate`` / ``jax-ssl-eval``: runs the evaluation job and prints its
tables (the job itself: ``job.py``; watch mode: ``watch.py``; the flags: ``jax_ssl.cli``).
"""
from __future__ import annotations

import sys

import jax

from jax_ssl.evaluate import layers
from jax_ssl.evaluate.job import evaluate, format_table, write_outputs


def _print_and_write(workdir: str, out: dict):
    """Prints first: a workdir that cannot be written must not cost the results."""
    if jax.process_index() != 0:
        return
    print(f"step {out['step']} of {workdir} ({out['dtype']}): top-1 accuracy on the eval "
          "split")
    print(format_table(out["results"]))
    if "per_layer" in out:
        print(layers.format_layer_table(out["per_layer"]))
    for key, kind in (("linear_protocol", "linear-probe protocol"),
                      ("finetune", "end-to-end fine-tuning")):
        if key in out:
            p = out[key]
            print(f"{p['protocol']} {kind} ({p['epochs']} epochs, batch {p['batch_size']}, "
                  f"lr {p['learning_rate']:.3g}, {100 * p['label_fraction']:g}% of the "
                  f"labels): top-1 {100 * p['top1']:.1f}%")
    write_outputs(workdir, out)


def run(f):
    """The job for the parsed flags ``f`` (``jax_ssl.cli.evaluate`` defines them)."""
    protocol_kwargs = {"epochs": f.protocol_epochs} if f.protocol_epochs else {}
    kwargs = dict(baselines=f.baselines, batch_size=f.batch_size, per_layer=f.per_layer,
                  vit_token=f.vit_token, protocol=f.protocol, protocol_kwargs=protocol_kwargs,
                  label_fraction=f.label_fraction, dtype=f.dtype, write=False)
    if f.watch:
        from jax_ssl.evaluate import watch

        def evaluate_and_print(step):
            out = evaluate(f.workdir, step=step, **kwargs)
            _print_and_write(f.workdir, out)
            return out
        watch.watch(f.workdir, evaluate=evaluate_and_print, poll_seconds=f.poll_seconds,
                    max_idle_polls=f.max_idle_polls)
        return
    _print_and_write(f.workdir, evaluate(f.workdir, step=f.step, **kwargs))


if __name__ == "__main__":
    from jax_ssl import cli

    sys.exit(cli.evaluate())
