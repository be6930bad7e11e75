"""One process of the multi-process test: ``python multihost_worker.py WORKDIR ID COUNT PORT``.

COUNT 1 runs alone; otherwise it joins the others through a gloo-backed coordinator.
"""
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(__file__))
from test_train import tiny_config  # noqa: E402

from jax_ssl import train  # noqa: E402


def main(workdir, process_id, num_processes, port):
    config = tiny_config("simclr", total_steps=4)
    if int(num_processes) > 1:
        config.distributed.update(dict(
            enabled=True, coordinator_address=f"127.0.0.1:{port}",
            num_processes=int(num_processes), process_id=int(process_id),
            cpu_collectives="gloo"))
    train.train(config, workdir)


if __name__ == "__main__":
    main(*sys.argv[1:])
