"""The console scripts: --help lists the flags without importing JAX, --print_config explains
the keys, bundled configs resolve by name in any install, and no warning opens a command."""
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from jax_ssl import cli
from jax_ssl.evaluate import layers, protocols

REPO = pathlib.Path(__file__).parent.parent
BIN = pathlib.Path(sys.executable).parent


def run(*args, timeout=60):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.mark.parametrize("script, flags", [
    ("jax-ssl-train", ["--config", "--workdir", "--print_config"]),
    ("jax-ssl-eval", [f"--{name}" for name in cli.EVAL_FLAGS if name != "baselines"]
     + ["--[no]baselines"]),
    ("jax-ssl-analyze", [f"--{name}" for name in cli.ANALYZE_FLAGS]),
    ("jax-ssl-import", ["--model", "--config", "--weights", "--workdir", "--part"]),
    ("jax-ssl-export", ["--workdir", "--output", "--step"])])
def test_console_script_help_lists_its_flags_and_the_usage(script, flags):
    out = run(BIN / script, "--help")  # absl's --help exits with status 1
    for flag in flags:
        assert flag in out.stdout, (flag, out.stdout)
    usage = {"jax-ssl-train": "usage: jax-ssl-train --config CONFIG --workdir DIR "
                              "[--config.KEY=VALUE ...]\n",
             "jax-ssl-eval": "usage: jax-ssl-eval --workdir DIR [--step N]",
             "jax-ssl-analyze": "usage: jax-ssl-analyze relax|attention|patch-similarity"
                                "|embed-map --workdir DIR\n",
             "jax-ssl-import": "usage: jax-ssl-import --model NAME --weights FILE "
                               "--workdir DIR [--part NAME]\n",
             "jax-ssl-export": "usage: jax-ssl-export --workdir DIR --output "
                               "FILE.safetensors [--step N]\n"}[script]
    assert usage in out.stdout  # the usage line whole, not joined to the next


def test_the_command_line_imports_no_jax_tensorflow_or_orbax():
    """What makes --help answer in a fraction of a second instead of ~15 s."""
    code = ("import sys, jax_ssl.cli; heavy = {'jax', 'tensorflow', 'orbax'} & "
            "{m.split('.')[0] for m in sys.modules}; assert not heavy, heavy")
    out = run(sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr


def test_print_config_resolves_a_bundled_name_and_shows_overrides():
    out = run(BIN / "jax-ssl-train", "--config", "simclr_digits", "--config.batch_size=48",
              "--print_config")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"# {REPO / 'configs' / 'simclr_digits.py'}"
    assert any(line.startswith("batch_size = 48 ") and "global batch" in line for line in lines)
    assert "# simclr: the method's settings" in out.stdout
    assert "(undocumented)" not in out.stdout


def test_train_without_workdir_is_a_usage_error():
    out = run(BIN / "jax-ssl-train", "--config", "simclr_digits")
    assert out.returncode != 0
    assert "--workdir is required" in out.stderr


def test_a_config_name_that_is_a_file_stays_that_file(tmp_path, monkeypatch):
    (tmp_path / "simclr_digits").write_text("")
    monkeypatch.chdir(tmp_path)
    argv = cli._resolve_config_argument(["prog", "--config", "simclr_digits",
                                         "--config=dino_digits", "--config=nope"])
    assert argv == ["prog", "--config", "simclr_digits",
                    f"--config={REPO / 'configs' / 'dino_digits.py'}", "--config=nope"]


def test_a_misspelt_config_key_is_one_line_with_the_suggestion(tmp_path):
    """Not absl's three chained tracebacks around ml_collections' "did you mean"."""
    out = run(BIN / "jax-ssl-train", "--config", "simclr_digits", "--config.batch_sise=3",
              "--workdir", tmp_path / "run")
    assert out.returncode == 2
    assert out.stderr == ("jax-ssl-train: --config.batch_sise: the config has no key "
                          "'batch_sise'. Did you mean \"batch_size\" instead of "
                          "\"batch_sise\"?\n"), out.stderr
    assert not (tmp_path / "run").exists()


def test_a_missing_config_file_is_one_line(tmp_path):
    out = run(BIN / "jax-ssl-train", "--config", tmp_path / "nope.py",
              "--config.batch_size=3", "--workdir", tmp_path / "run")
    assert out.returncode == 2
    assert out.stderr.startswith(f"jax-ssl-train: --config {tmp_path / 'nope.py'}: no such "
                                 "config file, nor a bundled config of that name")
    assert out.stderr.count("\n") == 1, out.stderr


@pytest.mark.parametrize("flag, complaint", [
    ("--poll_seconds=-1", "-1.0 is not a non-negative number"),
    ("--max_idle_polls=0", "0 is not a positive integer"),
    ("--batch_size=0", "0 is not a positive integer"),
    ("--step=-1", "-1 is not a non-negative integer"),
    ("--protocol_epochs=-1", "-1 is not a non-negative integer")])
def test_eval_flags_out_of_range_are_flag_errors(tmp_path, flag, complaint):
    """Refused while parsing, before the job imports anything or reads the workdir."""
    out = run(BIN / "jax-ssl-eval", "--workdir", tmp_path, flag)
    assert out.returncode == 1
    assert out.stderr.startswith(f"FATAL Flags parsing error: flag {flag}: {complaint}\n")
    assert "Traceback" not in out.stderr


def test_eval_flag_choices_are_the_jobs_own():
    import absl.flags

    values = absl.flags.FlagValues()
    cli.define_eval_flags(values)
    assert sorted(values) == sorted(cli.EVAL_FLAGS)
    assert values["vit_token"].parser.enum_values == list(layers.VIT_TOKENS)
    assert values["protocol"].parser.enum_values == list(protocols.NAMES)


def test_importing_checkpoints_prints_no_orbax_override_warning():
    out = run(sys.executable, "-c", "import jax_ssl.checkpoints")
    assert out.returncode == 0, out.stderr
    assert "overriding" not in out.stderr, out.stderr


def test_a_built_wheel_ships_the_configs_as_jax_ssl_configs(tmp_path):
    """A non-editable install has no repository around it: the configs travel inside."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    for folder in ("jax_ssl", "configs"):
        shutil.copytree(REPO / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--no-index", "-q", "-w", tmp_path / "dist", src, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("jax_ssl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.split("/")[-1] for n in names if n.startswith("jax_ssl/configs/")}
    in_repo = {p.name for p in (REPO / "configs").iterdir() if p.suffix in (".py", ".md")}
    assert shipped == in_repo
    assert "jax_ssl/cli.py" in names
    assert not any(n.startswith("configs/") for n in names)  # no top-level 'configs' package
    assert os.path.basename(cli.bundled_config("simclr_fashion_mnist")) == (
        "simclr_fashion_mnist.py")


def _last_stderr_line(out) -> str:
    """The error line: what follows TensorFlow's C++ start-up notices, which no setting
    silences, must be one line and no traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


def test_the_trainers_and_the_eval_jobs_own_errors_are_one_line(tmp_path):
    (tmp_path / "notes").write_text("not a workdir")
    out = run(BIN / "jax-ssl-train", "--config", "simclr_digits", "--workdir",
              tmp_path / "notes", timeout=120)
    assert out.returncode == 1
    assert _last_stderr_line(out).startswith("jax-ssl-train: --workdir ")
    assert "is a file; give a directory" in out.stderr
    out = run(BIN / "jax-ssl-eval", "--workdir", tmp_path, timeout=120)
    assert out.returncode == 1
    assert _last_stderr_line(out).startswith("jax-ssl-eval: no checkpoints in ")
    out = run(BIN / "jax-ssl-analyze", "relax", "--workdir", tmp_path, timeout=120)
    assert out.returncode == 1
    assert _last_stderr_line(out).startswith("jax-ssl-analyze: no checkpoints in ")
    with pytest.raises(ValueError, match="is not Y,X"):
        cli.parse_pixel("3")
    assert cli.parse_pixel("14,9") == (14, 9)
