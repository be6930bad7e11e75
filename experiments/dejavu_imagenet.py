"""The Déjà vu test on ImageNet as the paper runs it: partition, then the commands.

    python experiments/dejavu_imagenet.py --train /data/imagenet/train \
        --val /data/imagenet/val --boxes /data/imagenet_bbox --out /data/dejavu \
        [--per_class 300] [--config configs/vicreg_imagenet.py]

``--boxes`` holds ImageNet's box files as the paper's README fetches them
(https://www.image-net.org/data/bboxes_annotations.tar.gz, unpacked:
``Annotation/<wnid>/<id>.xml``). The script splits the training images as
facebookresearch/DejaVu's imagenet_partition.py does (``jax_ssl.analysis.dejavu.partition``:
per class, the images with boxes halved between A and B up to ``--per_class``, the same
images without boxes added to both, the rest public; the public set is the one of 500
per class, whatever ``--per_class``) and writes it under ``--out`` as folders of links
(``dejavu.link_partition``). It then prints the commands: train the target on A and the
reference on B alike (the paper: VICReg, 1,000 epochs; its backbone is a ResNet-101,
this config's a ResNet-50), and attack each set with the other run as the reference.
"""
from __future__ import annotations

import argparse
import os
import shlex

from jax_ssl.analysis import dejavu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="ImageNet's train folder")
    parser.add_argument("--val", required=True, help="ImageNet's val folder (class folders)")
    parser.add_argument("--boxes", required=True, help="holds Annotation/<wnid>/<id>.xml")
    parser.add_argument("--out", required=True)
    parser.add_argument("--per_class", type=int, default=300)
    parser.add_argument("--public_per_class", type=int, default=500)
    parser.add_argument("--config", default="configs/vicreg_imagenet.py")
    parser.add_argument("--runs", default="runs/dejavu_imagenet")
    args = parser.parse_args()
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out} exists: give another --out or remove it.")
    sizes = dejavu.link_partition(args.train, args.boxes, args.out, per_class=args.per_class,
                                  public_per_class=args.public_per_class, val_dir=args.val)
    print("images per set: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    q = shlex.quote
    for name in ("A", "B"):
        print(f"\njax-ssl-train --config {q(args.config)} --workdir {q(args.runs)}/{name} "
              f"--config.data.source={q(f'folder:{args.out}/{name}/{{split}}')} "
              "--config.data.split=train --config.data.eval_split=val --config.epochs=1000")
    for target, reference in (("A", "B"), ("B", "A")):
        print(f"\njax-ssl-analyze dejavu --workdir {q(args.runs)}/{target} "
              f"--reference_workdir {q(args.runs)}/{reference} "
              f"--attack_set={q(f'folder:{args.out}/attack_{target}/{{split}}')} "
              f"--boxes {q(args.boxes)} --public_set={q(f'folder:{args.out}/public/{{split}}')}")


if __name__ == "__main__":
    main()
