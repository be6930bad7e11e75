"""Config validation: a corpus of bad configs, each refused by ``config.validate`` with one
line that names the key, its value and what is allowed, without building or training
anything (the whole corpus runs in well under a second once the registries are imported).
"""
import pathlib
import re

import pytest

from jax_ssl import cli, methods
from jax_ssl import config as config_lib
from jax_ssl.config import ConfigError, validate

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"
DELETE = object()  # an override that removes the key


def configured(name: str, overrides: dict):
    """configs/<name>.py with ``overrides`` ({dotted key: value or DELETE}) applied."""
    config = config_lib.from_file(CONFIGS / f"{name}.py")
    for key, value in overrides.items():
        *parents, last = key.split(".")
        section = config
        for part in parents:
            section = section[part]
        if value is DELETE:
            del section[last]
        else:
            section[last] = value
    return config


def case(name, overrides, message, *, id):
    return pytest.param(name, overrides, message, id=id)


# (config, overrides, a regex the whole message matches)
BAD_CONFIGS = [
    # numbers out of range
    case("simclr_digits", {"checkpoint.keep": 0},
         r"checkpoint\.keep=0 is invalid: it must be an integer >= 1", id="keep-0"),
    case("simclr_digits", {"checkpoint.every_steps": 0},
         r"checkpoint\.every_steps=0 is invalid: it must be an integer >= 1", id="every-0"),
    case("simclr_digits", {"checkpoint.keep_every": -1},
         r"checkpoint\.keep_every=-1 is invalid: it must be an integer >= 0 or None",
         id="keep-every-negative"),
    case("simclr_digits", {"epochs": 0.0},
         r"epochs=0\.0 with total_steps=0 trains nothing; set epochs > 0 \(or total_steps > 0\)\.",
         id="epochs-0"),
    case("simclr_digits", {"epochs": -1.0},
         r"epochs=-1\.0 is invalid: it must be a number >= 0", id="epochs-negative"),
    case("simclr_digits", {"total_steps": -5},
         r"total_steps=-5 is invalid: it must be an integer >= 0 or None", id="steps-negative"),
    case("simclr_digits", {"batch_size": 0},
         r"batch_size=0 is invalid: it must be an integer >= 1", id="batch-0"),
    case("simclr_digits", {"log_every": 0},
         r"log_every=0 is invalid: it must be an integer >= 1 or None", id="log-every-0"),
    case("simclr_digits", {"grad_accum_steps": 0},
         r"grad_accum_steps=0 is invalid: it must be an integer >= 1 or None", id="accum-0"),
    case("simclr_digits", {"grad_accum_steps": 3},
         r"grad_accum_steps=3 does not divide the batch_size of 128; choose a divisor of 128\.",
         id="accum-not-dividing"),
    case("simclr_digits", {"optimizer.base_learning_rate": -0.1},
         r"optimizer\.base_learning_rate=-0\.1 is invalid: it must be a number >= 0",
         id="lr-negative"),
    case("simclr_digits", {"optimizer.base_learning_rate": float("nan")},
         r"optimizer\.base_learning_rate=nan is invalid: it must be a number >= 0", id="lr-nan"),
    case("simclr_digits", {"optimizer.b2": 1.0},
         r"optimizer\.b2=1\.0 is invalid: it must be a number in \[0, 1\) or None", id="b2-1"),
    case("simclr_digits", {"data.crop_size": 0},
         r"data\.crop_size=0 is invalid: it must be an integer >= 1", id="crop-0"),
    case("simclr_digits", {"data.eval_resize_size": 16},
         r"data\.eval_resize_size=16 is smaller than data\.crop_size=32: the evaluation crop "
         r"would not fit; make it >= 32\.", id="eval-resize-below-crop"),
    case("simclr_digits", {"distributed.num_processes": 2, "distributed.process_id": 2},
         r"distributed\.process_id=2 is not below distributed\.num_processes=2\.",
         id="process-id-out-of-range"),
    case("jigsaw_digits", {"optimizer.layer_decay": 0.9},
         r"optimizer\.layer_decay decays the learning rate over a ViT's blocks, but "
         r"model\.backbone='resnet18' is not a ViT; remove the key\.", id="layer-decay-resnet"),
    case("dino_digits", {"optimizer.layer_decay": 0.0},
         r"optimizer\.layer_decay=0\.0 is invalid: it must be a number in \(0, 1\] "
         r"or None", id="layer-decay-0"),
    # the methods' sections
    case("simclr_digits", {"simclr.temperature": 0.0},
         r"simclr\.temperature=0\.0 is invalid: it must be a number > 0", id="simclr-temp-0"),
    case("dino_digits", {"dino.teacher_temp": 0.0},
         r"dino\.teacher_temp=0\.0 is invalid: it must be a number > 0", id="dino-temp-0"),
    case("dino_digits", {"dino.center_momentum": 1.5},
         r"dino\.center_momentum=1\.5 is invalid: it must be a number in \[0, 1\]",
         id="dino-center-momentum"),
    case("mae_digits", {"mae.mask_ratio": 1.0},
         r"mae\.mask_ratio=1\.0 is invalid: it must be a number in \(0, 1\)", id="mask-ratio-1"),
    case("swav_digits", {"swav.crops_for_assign": (0, 0)},
         r"swav\.crops_for_assign=\(0, 0\) is invalid: it must be a non-empty tuple of "
         r"distinct crop indices >= 0", id="swav-crops-repeated"),
    case("swav_digits", {"swav.sinkhorn_iterations": 0},
         r"swav\.sinkhorn_iterations=0 is invalid: it must be an integer >= 1",
         id="sinkhorn-0"),
    case("barlow_twins_digits", {"barlow_twins.projector_sizes": ()},
         r"barlow_twins\.projector_sizes=\(\) is invalid: it must be a non-empty tuple of "
         r"integers >= 1", id="projector-empty"),
    case("moco_v3_digits", {"moco_v3.base_momentum": -0.1},
         r"moco_v3\.base_momentum=-0\.1 is invalid: it must be a number in \[0, 1\]",
         id="moco-momentum"),
    case("byol_digits", {"byol.hidden_dim": 0},
         r"byol\.hidden_dim=0 is invalid: it must be an integer >= 1", id="byol-width-0"),
    case("vicreg_digits", {"vicreg.std_coeff": -1.0},
         r"vicreg\.std_coeff=-1\.0 is invalid: it must be a number >= 0", id="vicreg-coeff"),
    case("simclr_digits", {"simclr": DELETE},
         r"simclr is not set; it must be a section of keys \(a dict\)", id="section-missing"),
    case("simclr_digits", {"simclr.projector_dim": DELETE},
         r"simclr\.projector_dim is not set; it must be an integer >= 1", id="key-missing"),
    # names
    case("simclr_digits", {"method": "simclrr"},
         r"method='simclrr' is invalid: it must be one of simclr, moco_v3, .*pirl",
         id="method"),
    case("simclr_digits", {"model.backbone": "resnet5"},
         r"model\.backbone='resnet5' is invalid: it must be one of resnet18, .*mae_vit_tiny",
         id="backbone"),
    case("simclr_digits", {"optimizer.name": "adam"},
         r"optimizer\.name='adam' is invalid: it must be one of lars, adamw, sgd",
         id="optimizer"),
    case("simclr_digits", {"dtype": "float16"},
         r"dtype='float16' is invalid: it must be one of float32, bfloat16", id="dtype"),
    case("simclr_digits", {"data.recipe": "autoaugment"},
         r"data\.recipe='autoaugment' is invalid: it must be one of simclr, byol, .*",
         id="recipe"),
    case("simclr_digits", {"data.source": "imagenet"},
         r"data\.source='imagenet' is invalid: it must be digits, fashion_mnist, "
         r"folder:<path>, npz:<path> or tfds:<name>", id="source"),
    case("simclr_digits", {"data.source": "tfds:"},
         r"data\.source='tfds:' is invalid: .*tfds:<name>", id="source-without-name"),
    # unknown keys: the closest known one, or who reads it
    case("simclr_digits", {"bach_size": 64},
         r"bach_size=64 is not a key of the config; did you mean batch_size\?", id="top-typo"),
    case("simclr_digits", {"optimizer.base_learnig_rate": 0.1},
         r"optimizer\.base_learnig_rate=0\.1 is not a key of optimizer; did you mean "
         r"optimizer\.base_learning_rate\?", id="optimizer-typo"),
    case("simclr_digits", {"simclr.temprature": 0.1},
         r"simclr\.temprature=0\.1 is not a key of simclr; did you mean simclr\.temperature\?",
         id="section-typo"),
    case("simclr_digits", {"optimizer.momentum": 1.0},  # lars' and sgd's key, on adamw
         r"optimizer\.momentum=1\.0 is invalid: it must be a number in \[0, 1\) or None",
         id="other-optimizers-key-out-of-range"),
    case("simclr_digits", {"dino": {"teacher_temp": 0.04}},
         r"dino=\{'teacher_temp': 0\.04\} is not a key of the config; it belongs to method "
         r"dino, not simclr", id="other-methods-section"),
    case("simclr_digits", {"checkpoint.bucket": "gs://b"},
         r"checkpoint\.bucket='gs://b' is not a key of checkpoint; the known ones are "
         r"checkpoint\.every_steps, checkpoint\.keep, checkpoint\.keep_every",
         id="unknown-without-close-key"),
    # the recipe's and the backbone's arguments
    case("simclr_digits", {"data.recipe_kwargs.style": "dino"},
         r"data\.recipe_kwargs\.style='dino' is not an argument of recipe simclr; it belongs "
         r"to recipe multicrop", id="recipe-kwarg-of-another-recipe"),
    case("simclr_digits", {"data.recipe_kwargs.sise": 32},
         r"data\.recipe_kwargs\.sise=32 is not an argument of recipe simclr; did you mean "
         r"size\?", id="recipe-kwarg-typo"),
    case("simclr_cifar10", {"model.backbone": "vit_s16"},
         r"model\.backbone_kwargs\.cifar_stem=True is not a field of vit_s16 "
         r"\(VisionTransformer\); it belongs to the backbones of ResNet",
         id="resnet-kwargs-on-a-vit"),
    case("simclr_digits", {"model.backbone": "resnet18"},
         r"model\.backbone_kwargs\.depth=4 is not a field of resnet18 \(ResNet\); it "
         r"belongs to the backbones of VisionTransformer or MAE", id="vit-kwargs-on-a-resnet"),
    case("simclr_digits", {"model.backbone_kwargs.dtype": "bfloat16"},
         r"model\.backbone_kwargs\.dtype='bfloat16' cannot be set here: the key dtype sets it",
         id="reserved-backbone-field"),
    case("mae_digits", {"model.backbone_kwargs.mask_ratio": 0.5},
         r"model\.backbone_kwargs\.mask_ratio=0\.5 cannot be set here: the key mae\.mask_ratio "
         r"sets it", id="mae-mask-ratio-twice"),
    # combinations
    case("simclr_digits", {"model.backbone": "mae_vit_tiny"},
         r"model\.backbone='mae_vit_tiny' is not a backbone of method simclr; use one of "
         r"resnet18, .*vit_h14, dinov2_vits14, .*dinov2_vitg14_reg\.",
         id="mae-backbone-for-simclr"),
    case("mae_digits", {"model.backbone": "vit_ti16", "model.backbone_kwargs": {}},
         r"model\.backbone='vit_ti16' is not a backbone of method mae; use one of "
         r"mae_vit_b16, .*mae_vit_tiny\.", id="vit-backbone-for-mae"),
    case("simclr_digits", {"data.recipe": "mae", "data.recipe_kwargs": {}},
         r"data\.recipe='mae' does not make the batches method simclr trains on; use simclr "
         r"or byol\.", id="recipe-for-another-method"),
    # the pretext recipes' geometry, checked by the recipe itself
    case("jigsaw_fashion_mnist", {"data.recipe_kwargs.tile": 12},
         r"data\.recipe_kwargs of recipe jigsaw: tile=12 must be between 1 and its cell's "
         r"side, size 27 // grid 3 = 9 px \(a tile larger than its cell\): lower tile or "
         r"raise size to >= 36\.", id="jigsaw-tile-larger-than-its-cell"),
    case("jigsaw_fashion_mnist", {"data.recipe_kwargs.num_permutations": 400_000,
                                  "jigsaw.num_permutations": 400_000},
         r"data\.recipe_kwargs of recipe jigsaw: num_permutations=400000 must be between 1 "
         r"and 9! = 362880 \(the orders of 9 tiles\).*", id="jigsaw-more-permutations-than-9!"),
    case("jigsaw_fashion_mnist", {"jigsaw.num_permutations": 200},
         r"jigsaw\.num_permutations=200 is not the recipe's "
         r"data\.recipe_kwargs\.num_permutations=100; set them equal\.",
         id="jigsaw-classes-not-the-recipes"),
    case("relative_position_digits", {"data.recipe_kwargs.jitter": 3},
         r"data\.recipe_kwargs of recipe relative_position: jitter=3 must be between 0 and "
         r"gap // 2 = 1 .*", id="relative-position-patches-overlap"),
    case("pirl_digits", {"data.recipe_kwargs.tile": 11},
         r"data\.recipe_kwargs of recipe pirl: tile=11 must be between 1 and its cell's "
         r"side, jigsaw_size 30 .*", id="pirl-tile-larger-than-its-cell"),
]


@pytest.mark.parametrize("name, overrides, message", BAD_CONFIGS)
def test_a_bad_config_is_refused_with_one_line(name, overrides, message):
    config = configured(name, overrides)
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert isinstance(error.value, ValueError)
    assert re.fullmatch(message, str(error.value)), str(error.value)


def test_accumulation_must_divide_each_devices_share():
    """train.make_train_step splits each device's share of the batch into micro-batches:
    128 images on 8 devices is 16 each, which 32 steps cannot split (the global 128 can)."""
    config = configured("simclr_digits", {"grad_accum_steps": 32})
    validate(config)
    with pytest.raises(ConfigError, match=re.escape(
            "grad_accum_steps=32 does not divide the per-device batch (batch_size 128 / 8 "
            "devices) of 16; choose a divisor of 16.")):
        validate(config, device_count=8)
    with pytest.raises(ConfigError, match=r"^batch_size=128 is not divisible by the 3 devices"):
        validate(configured("simclr_digits", {}), device_count=3)
    validate(configured("simclr_digits", {"grad_accum_steps": 16}), device_count=8)


@pytest.mark.parametrize("overrides", [
    {"epochs": 0.0, "total_steps": 10},  # the length given in steps
    {"optimizer.final_weight_decay": None, "optimizer.clip_per_tensor": 0.0},  # both off
    {"checkpoint.keep_every": 0, "data.data_dir": None, "data.image_size": None},
    {"simclr.projector_hidden_dim": None},  # the backbone's width
    {"optimizer.name": "sgd"},  # adamw's b1 and b2 stay: the command line cannot remove them
    {"distributed": DELETE},
    {"data.source": "folder:/data/{split}"},  # a form only: nothing on disk is read
])
def test_the_settings_that_look_like_mistakes_but_are_not(overrides):
    validate(configured("simclr_digits", overrides))


def test_an_unknown_section_is_one_problem_not_one_per_key_inside():
    config = configured("simclr_digits", {"dino": {"head": {"out_dim": 10, "bn": False}}})
    assert list(config_lib.problems(config)) == [
        "dino={'head': {'bn': False, 'out_dim': 10}} is not a key of the config; it belongs "
        "to method dino, not simclr"]


def test_the_rules_cover_every_documented_key_method_and_section_field():
    """A key added to KEY_HELP without a rule (or a method without its section's rules)
    would be refused as unknown in every config that sets it."""
    rules = config_lib.trainer_rules()
    sections = {"data", "model", "optimizer", "checkpoint", "distributed"}
    assert set(rules) - sections == set(config_lib.KEY_HELP)
    for table in (config_lib.METHOD_RULES, config_lib.METHOD_RECIPES,
                  config_lib.METHOD_BACKBONES):
        assert set(table) == set(methods.NAMES)
    for method in methods.NAMES:  # the digits configs are the reference (test_configs.py)
        section = config_lib.from_file(CONFIGS / f"{method}_digits.py")[method]
        assert set(section) == set(config_lib.METHOD_RULES[method]), method


def test_an_unknown_tfds_name_is_one_line_with_the_closest_names(tmp_path):
    """Not TFDS's list of every dataset (hundreds of lines); nothing is downloaded."""
    from jax_ssl.data import sources

    with pytest.raises(ValueError) as error:
        sources.get_source("tfds:cifar1O", data_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and len(message) < 300, message
    assert message.startswith(f"TFDS dataset 'cifar1O' not found: it is neither registered "
                              f"with TFDS nor prepared in data_dir='{tmp_path}'; did you mean ")
    assert "cifar10" in message.split("did you mean ")[1]
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_refuses_a_bad_config_before_the_workdir_exists(tmp_path, capsys):
    workdir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        cli.start_training(configured("simclr_digits", {"checkpoint.keep": 0}), str(workdir))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(": checkpoint.keep=0 is invalid: it must be an integer >= 1\n"), err
    assert err.count("\n") == 1
    assert not workdir.exists()
