r"""DINO, ViT-S/16 on ImageNet-1k, the 800-epoch run of the released ViT-S/16 (TPU pod / GPUs).

    python -m jax_ssl.train --config configs/dino_imagenet.py \
        --workdir gs://BUCKET/dino --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Source: facebookresearch/dino README (the ViT-S/16 checkpoint and its "Boosting DINO
performance" settings) on main_dino.py's defaults: batch 1024 (64 × 16 GPUs), 800
epochs, AdamW lr 5e-4 per 256 (2e-3) after 10 warm-up epochs, cosine to 1e-6, wd 0.04 →
0.4 (cosine), per-tensor gradient clipping 3.0, EMA teacher 0.996 → 1,
head 2048-2048-256 → 65536 without BN and with a trainable last-layer norm
(``--norm_last_layer false``), frozen the first epoch, student τ 0.1, teacher τ 0.04 →
0.07 over 30 epochs, center 0.9; multi-crop 2×224 (scale 0.25–1) + 10×96 (0.05–0.25)
with DINO's augmentation; DINO's position-embedding interpolation offset 0.1; the
student's stochastic depth 0.1 (``--drop_path_rate``; the teacher has none, as there).
Target: 77.0% linear top-1, 74.5% k-NN (dino README, ViT-S/16 table row). That run's
args.txt (linked from the README) is not mirrored here: where it may differ from
main_dino.py's defaults (``clip_grad``, ``min_lr``), the defaults are used. Computes in
bfloat16 (losses and softmaxes stay float32); ``--config.dtype=float32`` for full
precision.
"""
from jax_ssl.config import full_run, imagenet_multicrop


def get_config():
    config = full_run("dino", "imagenet", batch_size=1024, epochs=800)
    imagenet_multicrop(config)
    config.model.backbone = "vit_s16"
    config.model.backbone_kwargs = dict(interpolate_offset=0.1, drop_path_rate=0.1)
    config.optimizer = dict(name="adamw", base_learning_rate=5e-4, final_learning_rate=1e-6,
                            warmup_epochs=10, weight_decay=0.04, final_weight_decay=0.4,
                            b1=0.9, b2=0.999, clip_per_tensor=3.0)
    config.dino = dict(out_dim=65536, hidden_dim=2048, bottleneck_dim=256, use_bn_in_head=False,
                       norm_last_layer=False, base_momentum=0.996, student_temp=0.1,
                       warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=30,
                       center_momentum=0.9, freeze_last_layer=1.0)
    return config
