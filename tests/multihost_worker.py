"""One process of the multi-process test: ``python multihost_worker.py WORKDIR ID COUNT PORT``.

COUNT 1 runs alone; otherwise it joins the others through a gloo-backed coordinator.
Process 0 writes the final parameters to ``WORKDIR/params.npz`` (one array per path).
"""
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(__file__))
import jax  # noqa: E402
import numpy as np  # noqa: E402
from test_train import tiny_config  # noqa: E402

from jax_ssl import train  # noqa: E402


def main(workdir, process_id, num_processes, port):
    # SGD: parameters linear in the gradients. Under AdamW a tensor with no true gradient
    # (the attention's key bias: softmax ignores it) moves by ±lr on rounding noise's sign.
    config = tiny_config("simclr", total_steps=4, **{
        "optimizer.name": "sgd", "optimizer.momentum": 0.9, "optimizer.weight_decay": 0.0,
        "optimizer.base_learning_rate": 1.6})
    if int(num_processes) > 1:
        config.distributed.update(dict(
            enabled=True, coordinator_address=f"127.0.0.1:{port}",
            num_processes=int(num_processes), process_id=int(process_id),
            cpu_collectives="gloo"))
    params = train.train(config, workdir)["state"]["params"]
    if jax.process_index() == 0:  # replicated: this process's first shard is the whole array
        np.savez(os.path.join(workdir, "params.npz"),
                 **{jax.tree_util.keystr(path): np.asarray(x.addressable_data(0))
                    for path, x in jax.tree_util.tree_leaves_with_path(params)})


if __name__ == "__main__":
    main(*sys.argv[1:])
