"""The console scripts ``jax-ssl-train``, ``jax-ssl-eval`` and ``jax-ssl-analyze``: their
flags and usage.

Importing this module costs absl and ml_collections only, so ``--help`` and
``--print_config`` answer at once; JAX, TensorFlow and Orbax are imported once a job
starts. ``python -m jax_ssl.train`` and ``python -m jax_ssl.evaluate`` run the same
commands (their modules import the heavy packages first).
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

TRAIN_USAGE = """Pretrains a backbone with a self-supervised method (DESIGN.md, README.md).

usage: jax-ssl-train --config CONFIG --workdir DIR [--config.KEY=VALUE ...]
       jax-ssl-train --config CONFIG [--config.KEY=VALUE ...] --print_config

CONFIG is a config file (configs/<method>_<dataset>.py) or the name of one that ships
with jax-ssl (e.g. simclr_fashion_mnist). --print_config lists every key with its value
and meaning; any key can be overridden with --config.KEY=VALUE. Running the same command
again resumes from the latest complete checkpoint in DIR/checkpoints.
"""

IMPORT_USAGE = """Converts a published PyTorch checkpoint into a workdir (README.md).

usage: jax-ssl-import --model NAME --weights FILE --workdir DIR [--part NAME]
                      [--config CONFIG [--config.KEY=VALUE ...]]
       jax-ssl-import --config CONFIG --weights FILE --workdir DIR [--config.KEY=VALUE ...]

FILE is a .safetensors or PyTorch .pth file (read without unpickling anything but
tensors). NAME is a released checkpoint (dino_vits16, mae_vitb16, mocov3_resnet50,
torchvision_resnet50, dinov2_vitl14, ...: README.md, "Published weights"): it sets the
architecture, and CONFIG, if given, the rest (the data jax-ssl-eval and jax-ssl-analyze
then use; default: the method's ImageNet config). Without --model, CONFIG's
model.backbone is the architecture. The backbone is found inside wrapped checkpoints
(the teacher of DINO's full checkpoints, MoCo v3's base encoder; --part picks another).
DIR gets the config and checkpoint 0.
"""

EXPORT_USAGE = """Writes a workdir's backbone as a PyTorch state dict (README.md).

usage: jax-ssl-export --workdir DIR --output FILE.safetensors [--step N]

The file loads with strict=True into timm's ViT (num_classes=0) or torchvision's ResNet
(fc = torch.nn.Identity()).
"""

EVAL_USAGE = """Evaluates a training run's checkpoint: kNN and linear probes (README.md).

usage: jax-ssl-eval --workdir DIR [--step N] [--nobaselines] [--per_layer]
                    [--protocol fast|dino|mae|simclr|finetune] [--protocol_epochs E]
                    [--label_fraction F] [--dtype bfloat16]
                    [--watch [--poll_seconds S] [--max_idle_polls K]]
"""


def bundled_config(name: str) -> str | None:
    """The path of the config file ``name`` (``simclr_fashion_mnist`` or
    ``simclr_fashion_mnist.py``) shipped in ``jax_ssl.configs``, or None."""
    try:
        from importlib import resources

        directory = resources.files("jax_ssl.configs")
    except ModuleNotFoundError:  # a source checkout that was not installed
        return None
    path = directory / (name if name.endswith(".py") else f"{name}.py")
    return str(path) if path.is_file() else None


def _config_arguments(argv: list[str]):
    """``(index, prefix, value)`` of each ``--config`` value in ``argv`` (``--config=V``
    or ``--config V``)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            yield i, "--config=", arg[len("--config="):]
        elif i > 0 and argv[i - 1] == "--config":
            yield i, "", arg


def _resolve_config_argument(argv: list[str]) -> list[str]:
    """``--config NAME`` → the bundled file's path, where NAME is no file of its own."""
    argv = list(argv)
    for i, prefix, value in _config_arguments(argv):
        if not os.path.exists(value) and os.sep not in value and (path := bundled_config(value)):
            argv[i] = prefix + path
    return argv


def _no_positional_arguments(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; flags take the form --name=value.")


def _fail(message: str, status: int = 2):
    """Ends the command with ``message`` on one line and ``status`` (no traceback)."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(status)


def _missing_config_file(argv: list[str]) -> str | None:
    """The message for a ``--config`` that names no file (ml_collections would report it
    on first use, as a chained ``OSError``), or None."""
    for _, _, value in _config_arguments(argv):
        path = value.split(":")[0]  # FILE:ARG passes ARG to get_config
        if not os.path.isfile(path):
            return (f"--config {value}: no such config file, nor a bundled config of that "
                    "name (e.g. simclr_fashion_mnist; configs/README.md lists them).")
    return None


def _innermost_message(error: BaseException) -> str:
    """The message inside ``error``, unwrapping an exception given as an argument
    (ml_collections raises ``AttributeError(KeyError(message))``)."""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    return error.args[0] if error.args and isinstance(error.args[0], str) else str(error)


def _unknown_override(error: BaseException, argv: list[str]) -> str:
    """One line for a ``--config.KEY`` that the config does not have, with the suggestion
    of ml_collections' "did you mean" where it makes one."""
    first, _, suggestion = _innermost_message(error).partition("\n")
    key = first.strip("'\"")
    overrides = [arg.split("=")[0] for arg in argv if arg.startswith("--config.")]
    flag = next((f for f in overrides if key in f.split(".")[1:]), "--config")
    return (f"{flag}: the config has no key {key!r}. "
            + (suggestion or "--print_config lists its keys."))


def _parse_train_flags(argv: list[str]) -> list[str]:
    """absl's parsing (a bad flag value: one line and status 1), with the config flag's
    errors on one line too: a missing config file and a ``--config.KEY`` that the config
    does not have (absl chains three tracebacks around its "did you mean")."""
    if message := _missing_config_file(argv):
        _fail(message)
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as e:
        _fail(_unknown_override(e, argv))


def _run(main, usage: str, names: list[str], flags_parser=app.parse_flags_with_usage):
    """``app.run(main)`` with ``usage`` and the flags ``names`` shown by ``--help``.

    absl's ``--help`` lists the key flags of ``sys.argv[0]``, which for a console script
    is the wrapper file, not this module: declare ours as its key flags.
    """
    for name in names:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
    sys.modules["__main__"].__doc__ = usage
    app.run(main, argv=_resolve_config_argument(sys.argv), flags_parser=flags_parser)


def _quiet_absl():
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # Orbax logs every file operation at INFO


def _train_main(argv):
    _no_positional_arguments(argv)
    f = flags.FLAGS
    if f.print_config:
        from jax_ssl.config import describe

        print(f"# {f['config'].config_filename}\n{describe(f.config)}")
        return
    if not f.workdir:
        raise app.UsageError("--workdir is required: the directory for checkpoints and logs.")
    start_training(f.config, f.workdir)


def start_training(config, workdir: str) -> None:
    """Trains ``config`` in ``workdir`` (``train.train`` validates the config before it
    builds or writes anything); a config error (status 2) or one of the trainer's own
    errors, whose message says what to do (status 1: another run's workdir, a diverged
    loss, a damaged checkpoint), ends the command with its one line."""
    _quiet_absl()
    from jax_ssl import checkpoints, train
    from jax_ssl.config import ConfigError

    try:
        train.train(config, workdir)
    except ConfigError as e:
        _fail(str(e))
    except (train.IncompatibleWorkdir, train.NonFiniteLoss,
            checkpoints.DamagedCheckpoint) as e:
        _fail(str(e), status=1)


def train():
    """Console script ``jax-ssl-train``."""
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "A config file (configs/*.py) or the name "
                                    "of a bundled one, e.g. simclr_fashion_mnist.",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Checkpoints, metrics and logs go here.")
    flags.DEFINE_bool("print_config", False, "Print every key of the config (with overrides) "
                      "and what it means, then exit.")
    flags.mark_flags_as_required(["config"])
    _run(_train_main, TRAIN_USAGE, ["config", "workdir", "print_config"],
         flags_parser=_parse_train_flags)


EVAL_FLAGS = ["workdir", "step", "baselines", "batch_size", "per_layer", "vit_token",
              "protocol", "protocol_epochs", "label_fraction", "dtype", "watch",
              "poll_seconds", "max_idle_polls"]


ANALYZE_USAGE = """Looks inside a training run's backbone: pictures and numbers (README.md).

usage: jax-ssl-analyze relax|attention|patch-similarity|embed-map --workdir DIR
                       [--step N] [--num_images K] [--num_masks N] [--threshold F]
                       [--pixel Y,X] [--query_image I] [--num_points P] [--seed S]
       jax-ssl-analyze curate --workdir DIR --pool SOURCE --seed_set SOURCE
                       [--pool_split S] [--seed_split S] [--retrieval sample|cluster]
                       [--duplicate_similarity F] [--duplicate_neighbours K]
                       [--neighbours K] [--num_clusters C] [--per_cluster M]
       jax-ssl-analyze dejavu --workdir TARGET --reference_workdir REFERENCE
                       --attack_set npz:PATH|folder:PATH [--boxes DIR]
                       --public_set SOURCE [--attack_split S] [--public_split S]
                       [--min_side PX] [--knn_k K] [--embedding backbone|projector]

Writes DIR/analysis/<tool>_step_N_*.png and <tool>_step_N.json. attention and
patch-similarity need a ViT; relax, embed-map and curate work on any backbone. embed-map
needs the analysis extra (pip install 'jax-ssl[analysis]'). curate de-duplicates the
pool and retrieves from it the images near the seed set (DINOv2's curation); SOURCE is a
data.source string (fashion_mnist, folder:PATH, tfds:NAME). dejavu is the Déjà vu
memorisation test: from the background of each image the target was trained on (its
object boxes in the npz, or in --boxes: ImageNet's VOC .xml files), can it name the
object where the reference cannot?
"""
ANALYZE_TOOLS = ("relax", "attention", "patch-similarity", "embed-map", "curate", "dejavu")
CURATE_FLAGS = ["pool", "pool_split", "seed_set", "seed_split", "retrieval",
                "duplicate_similarity", "duplicate_neighbours", "neighbours", "num_clusters",
                "per_cluster"]
DEJAVU_FLAGS = ["reference_workdir", "attack_set", "attack_split", "boxes", "public_set",
                "public_split", "min_side", "knn_k", "embedding"]
ANALYZE_FLAGS = ["workdir", "step", "num_images", "num_masks", "threshold", "pixel",
                 "query_image", "num_points", "seed", *CURATE_FLAGS, *DEJAVU_FLAGS]


def _analyze_main(argv):
    if len(argv) != 2 or argv[1] not in ANALYZE_TOOLS:
        raise app.UsageError(f"name one tool: {' | '.join(ANALYZE_TOOLS)} (got {argv[1:]}).")
    values = flags.FLAGS
    try:
        pixel = parse_pixel(values.pixel) if values.pixel else None
    except ValueError as e:
        _fail(str(e))
    _quiet_absl()
    from jax_ssl import checkpoints
    from jax_ssl.analysis import job
    from jax_ssl.evaluate import job as eval_job

    try:
        job.run(argv[1], values.workdir, step=values.step, num_images=values.num_images,
                num_masks=values.num_masks, pixel=pixel, query_image=values.query_image,
                threshold=values.threshold, num_points=values.num_points,
                curation=curation_options(values),
                memorisation=memorisation_options(values), seed=values.seed)
    except (eval_job.NoCheckpoint, checkpoints.DamagedCheckpoint, ValueError,
            ImportError) as e:
        _fail(str(e), status=1)


def curation_options(values) -> dict:
    """The curate flags → ``analysis.job.run``'s ``curation``."""
    return {"pool": values.pool, "pool_split": values.pool_split, "seed_set": values.seed_set,
            "seed_split": values.seed_split, "mode": values.retrieval,
            "threshold": values.duplicate_similarity,
            "neighbours": values.duplicate_neighbours, "k": values.neighbours,
            "num_clusters": values.num_clusters, "per_cluster": values.per_cluster}


def memorisation_options(values) -> dict:
    """The dejavu flags → ``analysis.job.run``'s ``memorisation``."""
    return {"reference_workdir": values.reference_workdir, "attack_set": values.attack_set,
            "attack_split": values.attack_split, "boxes": values.boxes,
            "public_set": values.public_set,
            "public_split": values.public_split, "min_side": values.min_side,
            "k": values.knn_k, "embedding": values.embedding}


def parse_pixel(text: str) -> tuple[int, int]:
    """``--pixel``'s "Y,X" → (y, x)."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise ValueError(f"--pixel={text!r} is not Y,X (two integers, e.g. --pixel=14,9).")
    return int(parts[0]), int(parts[1])


def analyze():
    """Console script ``jax-ssl-analyze``."""
    flags.DEFINE_string("workdir", None, "The training run's --workdir.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest complete one).",
                         lower_bound=0)
    flags.DEFINE_integer("num_images", 4, "Images of the eval split to analyse.",
                         lower_bound=1)
    flags.DEFINE_integer("num_masks", 3000, "relax: masks per image (RELAX: 3000).",
                         lower_bound=1)
    flags.DEFINE_float("threshold", 0.6, "attention: the mass the outlined patches keep "
                       "(DINO: 0.6).", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_string("pixel", None, "patch-similarity: the query pixel Y,X (default: "
                        "the image's centre).")
    flags.DEFINE_integer("query_image", 0, "patch-similarity: the image the query pixel is "
                         "in.", lower_bound=0)
    flags.DEFINE_integer("num_points", 2000, "embed-map: images of the eval split to map.",
                         lower_bound=12)
    flags.DEFINE_integer("seed", 0, "relax: the masks' seed; embed-map: the maps' and the "
                         "corruptions'; curate: k-means' and the draws'.")
    flags.DEFINE_string("pool", None, "curate: the uncurated source (a data.source string).")
    flags.DEFINE_string("pool_split", "train", "curate: the pool's split.")
    flags.DEFINE_string("seed_set", None, "curate: the curated source whose neighbours are "
                        "retrieved.")
    flags.DEFINE_string("seed_split", "train", "curate: the seed set's split.")
    flags.DEFINE_enum("retrieval", "sample", ["sample", "cluster"], "curate: the nearest "
                      "pool images of each seed image, or balanced draws from the k-means "
                      "clusters the seed images fall in.")
    flags.DEFINE_float("duplicate_similarity", 0.6, "curate: cosine similarity above which "
                       "two pool images are duplicates (DINOv2: 0.6).", lower_bound=-1.0,
                       upper_bound=1.0)
    flags.DEFINE_integer("duplicate_neighbours", 64, "curate: neighbours of each pool image "
                         "searched for duplicates (DINOv2: 64).", lower_bound=1)
    flags.DEFINE_integer("neighbours", 4, "curate --retrieval=sample: pool images per seed "
                         "image (DINOv2: 4).", lower_bound=1)
    flags.DEFINE_integer("num_clusters", 100, "curate --retrieval=cluster: k-means clusters "
                         "of the pool.", lower_bound=1)
    flags.DEFINE_string("reference_workdir", None, "dejavu: the reference run, trained like "
                        "--workdir's on images disjoint from the attacked ones.")
    flags.DEFINE_string("attack_set", None, "dejavu: the attacked images (the target's "
                        "training images): an npz: source with a 'boxes' array, or a "
                        "folder: source with --boxes.")
    flags.DEFINE_string("boxes", None, "dejavu: a folder attack set's box files, "
                        "DIR/Annotation/<class>/<image>.xml (ImageNet's "
                        "bboxes_annotations.tar.gz unpacked) or DIR/<class>/<image>.xml.")
    flags.DEFINE_string("attack_split", "train", "dejavu: the attacked images' split.")
    flags.DEFINE_string("public_set", None, "dejavu: the labelled set the kNN reads, "
                        "disjoint from both runs' training sets.")
    flags.DEFINE_string("public_split", "train", "dejavu: the public set's split.")
    flags.DEFINE_integer("min_side", None, "dejavu: an attacked image's background crop "
                         "must be longer than this on its shorter side (default: a quarter "
                         "of an npz image's; the official 100 px for a folder).",
                         lower_bound=0)
    flags.DEFINE_integer("knn_k", 100, "dejavu: neighbours of the kNN (official: 100).",
                         lower_bound=1)
    flags.DEFINE_enum("embedding", "backbone", ["backbone", "projector"], "dejavu: what the "
                      "kNN reads: the backbone's representation, or the projector head's "
                      "output (the paper's default; methods with a projector).")
    flags.DEFINE_integer("per_cluster", 100, "curate --retrieval=cluster: images drawn from "
                         "each cluster a seed image falls in.", lower_bound=1)
    flags.mark_flags_as_required(["workdir"])
    _run(_analyze_main, ANALYZE_USAGE, ANALYZE_FLAGS)


def _evaluate_main(argv):
    _no_positional_arguments(argv)
    _quiet_absl()
    from jax_ssl import checkpoints
    from jax_ssl.evaluate import __main__ as evaluate_command
    from jax_ssl.evaluate import job

    try:
        evaluate_command.run(flags.FLAGS)
    except (job.NoCheckpoint, job.ResultsNotWritten, checkpoints.DamagedCheckpoint) as e:
        _fail(str(e), status=1)


def define_eval_flags(values: flags.FlagValues = flags.FLAGS):
    """Defines ``jax-ssl-eval``'s flags (``EVAL_FLAGS``) in ``values``.

    The choices are spelt out so that --help does not import the evaluation job;
    tests/test_cli.py checks them against jax_ssl.evaluate's own. Numbers out of range
    (a negative --step or --poll_seconds, --batch_size or --max_idle_polls below 1) are
    flag errors, reported before the job starts.
    """
    into = {"flag_values": values}
    flags.DEFINE_string("workdir", None, "The training run's --workdir.", **into)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest complete one).",
                         lower_bound=0, **into)
    flags.DEFINE_bool("baselines", True, "Also evaluate a random backbone and raw pixels.",
                      **into)
    flags.DEFINE_integer("batch_size", 512, "Global batch of the feature extraction (and of "
                         "a protocol's training).", lower_bound=1, **into)
    flags.DEFINE_bool("per_layer", False, "Also kNN and linear probes of every ResNet stage "
                      "/ ViT block, with a plot in WORKDIR/eval/.", **into)
    flags.DEFINE_enum("vit_token", "cls", ["cls", "mean"], "Per-layer ViT representation: "
                      "the normed CLS token (DINO) or mean patch token (MAE).", **into)
    flags.DEFINE_enum("protocol", "fast", ["fast", "dino", "mae", "simclr", "finetune"],
                      "'fast' (L-BFGS on precomputed features), or also an official linear "
                      "protocol, or MAE's end-to-end fine-tuning.", **into)
    flags.DEFINE_integer("protocol_epochs", None, "Epochs of the official protocol (default: "
                         "its own: 100 or 90; fine-tuning 100).", lower_bound=0, **into)
    flags.DEFINE_float("label_fraction", 1.0, "The --protocol trains on this fraction of "
                       "each class (e.g. 0.01, 0.1).", lower_bound=0, upper_bound=1, **into)
    flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "Compute dtype of the backbone "
                      "(default: the run's); features are float32 either way.", **into)
    flags.DEFINE_bool("watch", False, "Keep polling WORKDIR/checkpoints and evaluate each new "
                      "complete checkpoint once (ignores --step).", **into)
    flags.DEFINE_float("poll_seconds", 60.0, "Watch mode: seconds between listings.",
                       lower_bound=0, **into)
    flags.DEFINE_integer("max_idle_polls", None, "Watch mode: stop after this many listings "
                         "in a row found nothing new (default: never).", lower_bound=1,
                         **into)


def evaluate():
    """Console script ``jax-ssl-eval``."""
    define_eval_flags()
    flags.mark_flags_as_required(["workdir"])
    _run(_evaluate_main, EVAL_USAGE, EVAL_FLAGS)


def _import_main(argv):
    _no_positional_arguments(argv)
    _quiet_absl()
    from jax_ssl import weights
    from jax_ssl.config import ConfigError
    from jax_ssl.evaluate import published

    f = flags.FLAGS
    if not (f.model or f.config):
        raise app.UsageError("give --model (a released checkpoint's name) or --config.")
    try:
        config = published.published_config(f.model, f.config) if f.model else f.config
        out = published.import_weights(f.weights, config, f.workdir, part=f.part)
    except ConfigError as e:
        _fail(str(e))
    except weights.WeightsError as e:
        _fail(str(e), status=1)
    print(f"imported {out['tensors']} tensors of {f.weights} into {f.workdir} (checkpoint 0)")


def import_weights():
    """Console script ``jax-ssl-import``."""
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "A config file (configs/*.py) or the name "
                                    "of a bundled one; its model.backbone is the architecture.",
                                    lock_config=True)
    flags.DEFINE_string("model", None, "A released checkpoint's name (dino_vits16, mae_vitb16, "
                        "...; README.md), which sets the architecture.")
    flags.DEFINE_string("weights", None, "The .safetensors or .pth file.")
    flags.DEFINE_string("workdir", None, "The new workdir.")
    flags.DEFINE_string("part", None, "The part of a wrapped checkpoint that holds the backbone "
                        "(default: teacher, base_encoder, or the one that holds it).")
    flags.mark_flags_as_required(["weights", "workdir"])
    _run(_import_main, IMPORT_USAGE, ["model", "config", "weights", "workdir", "part"],
         flags_parser=_parse_train_flags)


def _export_main(argv):
    _no_positional_arguments(argv)
    _quiet_absl()
    from jax_ssl import checkpoints
    from jax_ssl.evaluate import job, published

    f = flags.FLAGS
    try:
        out = published.export_weights(f.workdir, f.output, step=f.step)
    except (job.NoCheckpoint, checkpoints.DamagedCheckpoint) as e:
        _fail(str(e), status=1)
    print(f"wrote {out['tensors']} tensors of {out['backbone']} (step {out['step']}) to "
          f"{f.output}")


def export_weights():
    """Console script ``jax-ssl-export``."""
    flags.DEFINE_string("workdir", None, "A training run's or an imported --workdir.")
    flags.DEFINE_string("output", None, "The .safetensors file to write.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest complete one).",
                         lower_bound=0)
    flags.mark_flags_as_required(["workdir", "output"])
    _run(_export_main, EXPORT_USAGE, ["workdir", "output", "step"])

