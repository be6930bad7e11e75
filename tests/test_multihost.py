"""Two real processes (2 CPU devices each, gloo collectives) train like one with 4 devices:
the same losses and the same final parameters."""
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
from test_train import logged

WORKER = pathlib.Path(__file__).parent / "multihost_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(workdir, num_processes: int, devices_per_process: int):
    # the suite's XLA flags (conftest.py), with this process's own device count
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    env = {**os.environ, "XLA_FLAGS": " ".join(
        [*flags, f"--xla_force_host_platform_device_count={devices_per_process}"])}
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(workdir), str(i),
                               str(num_processes), str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(num_processes)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=False):
        assert p.returncode == 0, out[-3000:]
    return outputs


def test_two_processes_match_one_process(tmp_path):
    outputs = _run(tmp_path / "two", num_processes=2, devices_per_process=2)
    _run(tmp_path / "one", num_processes=1, devices_per_process=4)
    assert "on 4 device(s) in 2 process(es)" in outputs[0]
    assert "step 1/4" not in outputs[1]  # progress is printed by process 0 only
    two, one = logged(tmp_path / "two"), logged(tmp_path / "one")
    assert len(two) == len(one) == 4
    np.testing.assert_allclose(two, one, rtol=1e-5)
    # and the same parameters after the last update, which no logged loss has seen
    two, one = (np.load(tmp_path / run / "params.npz") for run in ("two", "one"))
    assert sorted(two.files) == sorted(one.files) and len(one.files) > 10
    for name in one.files:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
