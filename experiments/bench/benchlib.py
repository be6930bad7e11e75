"""What the benchmarks share: timing a jitted function and printing its table."""
from __future__ import annotations

import statistics
import time

import jax


def time_fn(fn, args, repeats):
    """(compile seconds, median seconds per call) of ``jax.jit(fn)`` on ``args``.

    One warm-up call precedes the ``repeats`` timed ones; each waits for its result.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return compile_s, statistics.median(times)


def selected_names(parser, names, only):
    """The names a comma-separated ``--only`` value picks (all when empty); an unknown
    name is a parser error that lists the choices."""
    picked = [n for n in only.split(",") if n]
    if unknown := sorted(set(picked) - set(names)):
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return picked or list(names)


def plain_table(header, rows, text_columns):
    """Aligned text: the first ``text_columns`` columns left, the numbers right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def align(row):
        return "  ".join(cell.ljust(w) if i < text_columns else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(row, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([align(header), rule] + [align(row) for row in rows])


def markdown_table(header, rows, text_columns):
    rule = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    return "\n".join("| " + " | ".join(line) + " |" for line in [header, rule, *rows])
