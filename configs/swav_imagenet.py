r"""SwAV, ResNet-50 on ImageNet-1k, the official 800-epoch multi-crop recipe (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/swav_imagenet.py \
        --workdir gs://BUCKET/swav --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/swav scripts/swav_800ep_pretrain.sh: batch 4096 (64 × 64 GPUs),
800 epochs, LARS lr 4.8 (0.3 per 256) after 10 warm-up epochs, cosine to 0.0048, wd 1e-6,
multi-crop 2×224 (scale 0.14–1) + 6×96 (0.05–0.14) with SwAV's jitter (0.8, 0.8, 0.8,
0.2) and blur p 0.5, projector 2048-128, 3000 prototypes frozen for 313 iterations,
τ 0.1, Sinkhorn ε 0.05 × 3 on crops 0 and 1, ``--queue_length 0``.
Target: 75.3% linear top-1 (swav README, SwAV 800 epochs, batch 4096, 2x224 + 6x96).
The queue: that script uses none at batch 4096; the small-batch scripts
(swav_400ep_bs256_pretrain.sh) use ``--queue_length 3840 --epoch_queue_starts 15``,
which is ``--config.swav.queue_length=3840 --config.swav.queue_start_epoch=15`` here
(the queue is split over the devices, as the official one over GPUs).
Not reproduced: the warm-up starts at 0 (official: 0.3); the official LARC adapts and
decays every tensor, biases and BN included, where this LARS leaves those out. Computes
in bfloat16 (the official: apex fp16).
"""
from jax_ssl.config import resnet_lars


def get_config():
    config = resnet_lars("swav", "imagenet", learning_rate=0.3, weight_decay=1e-6,
                         batch_size=4096, epochs=800, final_learning_rate=0.0048)
    config.data.recipe = "multicrop"
    config.data.recipe_kwargs = dict(style="swav", global_size=224, local_size=96,
                                     num_local=6,
                                     normalization=config.data.recipe_kwargs.normalization)
    config.swav = dict(hidden_dim=2048, output_dim=128, num_prototypes=3000, temperature=0.1,
                       epsilon=0.05, sinkhorn_iterations=3, crops_for_assign=(0, 1),
                       freeze_prototypes_steps=313, queue_length=0, queue_start_epoch=0.0)
    return config
