"""SimCLR on the Déjà vu scenes: Fashion-MNIST objects on per-image backgrounds.

    python experiments/dejavu_fashion_mnist.py      # builds the scenes, trains, attacks
    python -m jax_ssl.train --config configs/simclr_dejavu_fashion_mnist.py --workdir W

The data are `npz:runs/dejavu/{split}.npz`, which experiments/dejavu_fashion_mnist.py
writes: splits A and B (the target's and the reference's training sets, disjoint), AB
(both: the control reference) and X (the public set the attack's kNN reads). Scenes are
48×48 colour images with one 28×28 object each. The demo's recipe (simclr_fashion_mnist:
its 3-block ViT of width 64, τ 0.1, AdamW) on 8×8 patches (36 tokens), with SimCLR's
crops of scale (0.08, 1): a crop of background alone must meet a crop with the object,
which is how a model comes to link an image's background with its object. Many epochs
of a small set, since memorisation is what the test looks for.
"""
import pathlib

from jax_ssl.config import from_file

SIZE = 48


def get_config():
    config = from_file(pathlib.Path(__file__).with_name("simclr_fashion_mnist.py"))
    config.data.source = "npz:runs/dejavu/{split}.npz"
    config.data.split = "A"
    config.data.eval_split = "X"
    config.data.crop_size = config.data.eval_resize_size = SIZE
    config.data.recipe_kwargs.update(dict(size=SIZE, scale=(0.08, 1.0),
                                          normalization=((0.5,) * 3, (0.25,) * 3)))
    config.model.backbone_kwargs.update(patch_size=8, image_size=SIZE)
    config.epochs = 300.0
    config.optimizer.warmup_epochs = 5.0
    config.checkpoint.every_steps = 500
    return config
