"""How curation scales with the pool: nearest-neighbour search and k-means, pool size vs time.

Usage::

    python experiments/bench/curate.py [--sizes 12500,25000,50000,100000] [--dim 384]
                                       [--clusters 100] [--markdown]

For each pool size N (random unit features of ``--dim``, ViT-S's width by default) it
times, on the ``data`` mesh of every device, what ``jax-ssl-analyze curate`` runs:
de-duplication's search (each pool image's 65 nearest in the pool, ``curate.nearest``
in chunks of 1024 queries) and k-means (``--clusters``, 20 Lloyd iterations,
``curate.kmeans``, its k-means++ seeding included). Each is run once to compile and
once timed. The last columns are what each device holds: its block of the pool, and the
largest temporary, one query chunk's similarities to that block.

The search costs 2·N²·D FLOPs: quadratic in the pool, split over the devices; k-means
costs 2·N·C·D per iteration. Memory per device grows as N/devices, so a pool that does
not fit one device fits several.
"""
from __future__ import annotations

import argparse
import time

import benchlib
import jax
import numpy as np

from jax_ssl import parallel
from jax_ssl.analysis import curate

QUERY_CHUNK = 1024


def timed(fn):
    fn()  # compiles
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12500,25000,50000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    mesh = parallel.data_mesh()
    devices = mesh.devices.size
    rng = np.random.default_rng(0)
    header = ["pool", "devices", "search s", "search GFLOP/s", "k-means s",
              "pool MB/device", "chunk MB/device"]
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        pool = curate.unit_rows(rng.standard_normal((n, args.dim), np.float32))
        search = timed(lambda p=pool: curate.nearest(p, p, 65, mesh, query_chunk=QUERY_CHUNK))
        kmeans = timed(lambda p=pool: curate.kmeans(p, args.clusters, mesh, iterations=20))
        block = -(-n // devices)
        rows.append([f"{n:,}", str(devices), f"{search:.1f}",
                     f"{2 * n * n * args.dim / search / 1e9:.0f}", f"{kmeans:.1f}",
                     f"{block * args.dim * 4 / 1e6:.0f}",
                     f"{QUERY_CHUNK * block * 4 / 1e6:.0f}"])
        print(f"pool {n:,}: search {search:.1f} s, k-means {kmeans:.1f} s", flush=True)
    table = benchlib.markdown_table if args.markdown else benchlib.plain_table
    print(f"\n{jax.devices()[0].platform}, D = {args.dim}, {args.clusters} clusters")
    print(table(header, rows, text_columns=2))


if __name__ == "__main__":
    main()
