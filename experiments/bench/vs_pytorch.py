"""Our SimCLR, MAE and DINO training steps next to the official PyTorch ones: one table.

Usage::

    python experiments/bench/vs_pytorch.py [--only simclr,mae,dino] [--repeats 3] [--markdown]

Each case builds its config (``configs/<case>``) with the case's batch size in float32
and times our trainer's jitted step with ``train.bench_method`` (the same function as
experiments/bench/train.py), then the official PyTorch step on the same inputs (our
synthetic batch, made NCHW and view-major): forward, loss, backward, optimizer step and,
for DINO, the gradient clipping, the center and the EMA teacher update. Times are medians
of ``--repeats`` steps after one warm-up step; the ratio is our img/s over PyTorch's.
Both sides do the same arithmetic, so one FLOP count (XLA's ``cost_analysis`` of our
compiled step) gives both sides' GFLOP/s. "ratio bound" is the ratio our step would reach
if every one of its FLOPs ran at the rate of a plain jitted 2048² float32 matmul on this
machine (measured first): where it is below a target ratio, no lowering of the step's
ops reaches that target on this CPU with XLA's matmul; a matmul-bound step can only get
near it.
A last table times both libraries' matmuls on the ViT steps' largest shapes (their MLPs'
first layers): a ViT step is mostly such products, so their ratio caps the steps' one.
The PyTorch sides, written after the official codes with the config's architecture and
hyper-parameters:

* simclr: torchvision ResNet-18 with the CIFAR stem (3×3/1 conv, no max-pool), both views
  as one batch, google-research/simclr's projector (bias-free Linears, BN, the last BN
  with scale and no centre), NT-Xent, and LARS as SimCLR (and ``jax_ssl.optim``) uses it.
* mae: facebookresearch/mae's MaskedAutoencoderViT built from timm's ``PatchEmbed`` and
  ``Block`` with fixed sin-cos position embeddings, argsort-of-noise masking, norm-pix
  loss; AdamW without decay on 1-d tensors, as main_pretrain.py.
* dino: facebookresearch/dino main_dino.py: student and teacher timm ViTs (the student
  with the config's drop path) + DINOHead (weight-normed last layer), crops grouped by
  resolution as MultiCropWrapper, DINOLoss, AdamW with per-tensor clipping, the last
  layer's gradient dropped (first epoch, as our timed steps are), EMA teacher.

Only steps are compared: PyTorch's initialisations are left at their defaults, and
learning rates, weight decay, EMA momentum and teacher temperature are their values at
step 0 (schedules change no cost). Where the PyTorch side differs from the official
codes: timm's attention runs ``F.scaled_dot_product_attention`` (theirs: an explicit
softmax), and timm resizes DINO's position embedding for the 96 px crops with an
antialiased bicubic (DINO: bicubic with a 0.1 offset).
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import pathlib
import statistics
import sys
import time
from functools import partial

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# torch before tensorflow (train.py imports it): the other order segfaults at import.
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from timm.layers import PatchEmbed  # noqa: E402
from timm.models.vision_transformer import Block  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import benchlib  # noqa: E402
import jax  # noqa: E402
import train as jax_bench  # noqa: E402

from jax_ssl import parallel  # noqa: E402
from jax_ssl.config import from_file  # noqa: E402
from jax_ssl.methods import mae as mae_method  # noqa: E402
from jax_ssl.models.vit import sincos_2d_pos_embed  # noqa: E402

# case -> (config file, batch size)
CASES = {
    "simclr": ("simclr_cifar10.py", 128),
    "mae": ("mae_imagenet.py", 16),
    "dino": ("dino_imagenet.py", 8),
}


# ----------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------


def torch_inputs(config):
    """Our synthetic batch as PyTorch inputs: per recipe key, [B, (V,) H, W, C] becomes
    [V·B, C, H, W] with the views stacked view-major, as the official codes concatenate
    them."""
    mesh = parallel.data_mesh(jax.local_devices())
    batch = jax_bench.synthetic_batch(config, config.batch_size, mesh)
    inputs = {}
    for key, value in batch.items():
        if key == "label":
            continue
        x = np.asarray(value)
        if x.ndim == 5:
            x = np.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:])
        inputs[key] = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return inputs


def learning_rate(config):
    return config.optimizer.base_learning_rate * config.batch_size / 256


def trainable(module):
    return [p for p in module.parameters() if p.requires_grad]


def decay_groups(module, weight_decay):
    """The official AdamW groups: weight decay on every tensor but the 1-d ones (biases,
    norms), as MAE's ``add_weight_decay`` and DINO's ``get_params_groups``."""
    params = trainable(module)
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def adamw(module, config):
    opt = config.optimizer
    return torch.optim.AdamW(decay_groups(module, opt.weight_decay), lr=learning_rate(config),
                             betas=(opt.get("b1", 0.9), opt.get("b2", 0.999)))


def vit_block(dim, heads, mlp_ratio, drop_path=0.0):
    """MAE's and DINO's pre-norm block: qkv bias, LayerNorm eps 1e-6."""
    return Block(dim, heads, mlp_ratio, qkv_bias=True, drop_path=drop_path,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6))


# ----------------------------------------------------------------------------------------
# SimCLR
# ----------------------------------------------------------------------------------------


class LARS(torch.optim.Optimizer):
    """SimCLR's LARS with ``optax.lars``'s semantics (``jax_ssl.optim``): for a matrix or
    kernel, u = g + wd·p is scaled by trust·‖p‖/‖u‖ (by 1 when either norm is 0); the 1-d
    tensors (biases, BN) take u = g, neither decayed nor adapted; then the momentum buffer
    m ← momentum·m + lr·u and p ← p − m."""

    def __init__(self, params, lr, weight_decay, momentum=0.9, trust_coefficient=0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if p.ndim > 1:
                    update = update.add(p, alpha=group["weight_decay"])
                    p_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                    trust = torch.where((p_norm > 0) & (u_norm > 0),
                                        group["trust_coefficient"] * p_norm / u_norm, 1.0)
                    update = update * trust
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p)
                state["momentum"].mul_(group["momentum"]).add_(update, alpha=group["lr"])
                p.sub_(state["momentum"])


class ScaleOnlyBatchNorm(nn.Module):
    """SimCLR's output BN: normalised, then scaled, no centre (bias)."""

    def __init__(self, features):
        super().__init__()
        self.norm = nn.BatchNorm1d(features, affine=False)
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, x):
        return self.norm(x) * self.scale


def cifar_resnet18():
    net = torchvision.models.resnet18()
    width = net.fc.in_features
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool, net.fc = nn.Identity(), nn.Identity()
    return net, width


def simclr_projector(width, hidden_dim, output_dim, num_layers):
    layers = []
    for _ in range(num_layers - 1):
        layers += [nn.Linear(width, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                   nn.ReLU()]
        width = hidden_dim
    return nn.Sequential(*layers, nn.Linear(width, output_dim, bias=False),
                         ScaleOnlyBatchNorm(output_dim))


def nt_xent(z, temperature):
    """Cross-entropy of each of the 2N rows of z = [view 1; view 2] against the other view
    of its image, itself excluded, averaged over the 2N anchors."""
    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool),
                                                 float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, positives)


def torch_simclr(config, inputs):
    cfg = config.simclr
    backbone, width = cifar_resnet18()
    model = nn.Sequential(backbone, simclr_projector(
        width, cfg.get("projector_hidden_dim") or width, cfg.projector_dim,
        cfg.projector_layers)).train()
    opt = config.optimizer
    optimizer = LARS(trainable(model), learning_rate(config), opt.weight_decay,
                     opt.get("momentum", 0.9), opt.get("trust_coefficient", 0.001))
    views = inputs["views"]

    def step():
        loss = nt_xent(model(views), cfg.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, model


# ----------------------------------------------------------------------------------------
# MAE
# ----------------------------------------------------------------------------------------


def fixed_pos_embed(dim, grid):
    return torch.from_numpy(sincos_2d_pos_embed(dim, grid, cls_token=True))[None]


class MaskedAutoencoder(nn.Module):
    """MAE: ViT encoder on the visible patches, a light decoder predicting every patch."""

    def __init__(self, net):
        super().__init__()
        dim, dec_dim = net.embed_dim, net.decoder_embed_dim
        self.mask_ratio = net.mask_ratio
        self.patch_embed = PatchEmbed(net.image_size, net.patch_size, 3, dim)
        grid = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.register_buffer("pos_embed", fixed_pos_embed(dim, grid))
        self.blocks = nn.Sequential(*[vit_block(dim, net.num_heads, net.mlp_ratio)
                                      for _ in range(net.depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dec_dim) * 0.02)
        self.register_buffer("decoder_pos_embed", fixed_pos_embed(dec_dim, grid))
        self.decoder_blocks = nn.Sequential(*[
            vit_block(dec_dim, net.decoder_num_heads, net.mlp_ratio)
            for _ in range(net.decoder_depth)])
        self.decoder_norm = nn.LayerNorm(dec_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dec_dim, net.patch_size ** 2 * 3)

    def random_masking(self, x):
        """Keeps the patches with the smallest uniform noise → (kept [B, K, D], mask [B, L]
        with 1 for a removed patch, ids_restore [B, L])."""
        b, length, dim = x.shape
        keep = int(length * (1 - self.mask_ratio))
        ids_shuffle = torch.rand(b, length).argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, dim))
        mask = torch.ones(b, length)
        mask[:, :keep] = 0
        return kept, torch.gather(mask, 1, ids_restore), ids_restore

    def forward(self, images):
        x, mask, ids_restore = self.random_masking(self.patch_embed(images)
                                                   + self.pos_embed[:, 1:])
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = self.decoder_embed(self.norm(self.blocks(torch.cat([cls, x], dim=1))))
        b, length = ids_restore.shape
        patches = torch.cat([x[:, 1:], self.mask_token.expand(b, length + 1 - x.shape[1], -1)],
                            dim=1)
        patches = torch.gather(patches, 1, ids_restore[..., None].expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        return self.decoder_pred(self.decoder_norm(self.decoder_blocks(x)))[:, 1:], mask


def patchify(images, p):
    """[B, C, H, W] → [B, L, p·p·C], (row, column, channel) order within a patch."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def mae_loss(pred, target, mask, norm_pix):
    if norm_pix:
        target = (target - target.mean(-1, keepdim=True)) / (
            target.var(-1, keepdim=True) + 1e-6).sqrt()
    return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()


def torch_mae(config, inputs):
    net = mae_method.network(config)
    model = MaskedAutoencoder(net).train()
    optimizer = adamw(model, config)
    images = inputs["image"]
    target = patchify(images, net.patch_size)

    def step():
        pred, mask = model(images)
        loss = mae_loss(pred, target, mask, config.mae.norm_pix_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, model


# ----------------------------------------------------------------------------------------
# DINO
# ----------------------------------------------------------------------------------------


class DINOHead(nn.Module):
    """MLP in→2048→2048→256 with GELU, L2 normalisation, weight-normed bias-free Linear."""

    def __init__(self, in_dim, cfg):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, cfg.hidden_dim), nn.GELU(),
                                 nn.Linear(cfg.hidden_dim, cfg.hidden_dim), nn.GELU(),
                                 nn.Linear(cfg.hidden_dim, cfg.bottleneck_dim))
        self.last_layer = nn.utils.parametrizations.weight_norm(
            nn.Linear(cfg.bottleneck_dim, cfg.out_dim, bias=False))
        norm = self.last_layer.parametrizations.weight.original0  # g, [out_dim, 1]
        with torch.no_grad():
            norm.fill_(1.0)
        norm.requires_grad_(not cfg.norm_last_layer)

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


class MultiCrop(nn.Module):
    """Backbone on each resolution's crops as one batch, then the head on all of them."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crop_groups):
        return self.head(torch.cat([self.backbone(x) for x in crop_groups]))


def dino_network(config, drop_path_rate):
    backbone = timm.create_model("vit_small_patch16_224", num_classes=0,
                                 dynamic_img_size=True, drop_path_rate=drop_path_rate)
    return MultiCrop(backbone, DINOHead(backbone.num_features, config.dino)).train()


def dino_loss(student, teacher, center, *, num_crops, student_temp, teacher_temp):
    """Mean over (teacher crop i, student crop v ≠ i) of the batch-mean cross-entropy."""
    student = (student / student_temp).chunk(num_crops)
    teacher = F.softmax((teacher - center) / teacher_temp, dim=-1).detach().chunk(2)
    terms = [torch.sum(-t * F.log_softmax(s, dim=-1), dim=-1).mean()
             for i, t in enumerate(teacher) for v, s in enumerate(student) if v != i]
    return sum(terms) / len(terms)


def torch_dino(config, inputs):
    cfg, opt = config.dino, config.optimizer
    if config.model.backbone != "vit_s16" or cfg.use_bn_in_head:
        raise ValueError("the PyTorch DINO side is ViT-S/16 with a head without BN.")
    student = dino_network(config, config.model.backbone_kwargs.get("drop_path_rate", 0.0))
    teacher = dino_network(config, 0.0)
    teacher.load_state_dict(student.state_dict())
    teacher.requires_grad_(False)
    optimizer = adamw(student, config)
    center = torch.zeros(1, cfg.out_dim)
    globals_, locals_ = inputs["global_views"], inputs["local_views"]
    num_crops = (len(globals_) + len(locals_)) // config.batch_size
    last_layer = list(student.head.last_layer.parameters())

    def step():
        with torch.no_grad():
            teacher_out = teacher([globals_])
        student_out = student([globals_, locals_])
        loss = dino_loss(student_out, teacher_out, center, num_crops=num_crops,
                         student_temp=cfg.student_temp, teacher_temp=cfg.warmup_teacher_temp)
        optimizer.zero_grad()
        loss.backward()
        for p in trainable(student):  # DINO's clip_gradients: each tensor's own norm
            norm = p.grad.norm()
            p.grad.mul_(torch.clamp(opt.clip_per_tensor / (norm + 1e-6), max=1.0))
        for p in last_layer:  # cancel_gradients_last_layer, epoch 0
            p.grad = None
        optimizer.step()
        with torch.no_grad():
            for s, t in zip(student.parameters(), teacher.parameters(), strict=True):
                t.mul_(cfg.base_momentum).add_(s.detach(), alpha=1 - cfg.base_momentum)
            center.mul_(cfg.center_momentum).add_(
                teacher_out.mean(dim=0, keepdim=True), alpha=1 - cfg.center_momentum)
        return loss.item()

    return step, student


TORCH_STEPS = {"simclr": torch_simclr, "mae": torch_mae, "dino": torch_dino}

# The ViT steps' largest matmuls, [tokens, D] @ [D, 4D] (the MLP's first layer), as
# (label, tokens, D): MAE's decoder on 16×197 tokens and encoder on 16×50 visible ones,
# DINO's student on 8×(2×197 + 10×37).
VIT_GEMMS = [("mae decoder fc1", 16 * 197, 512), ("mae encoder fc1", 16 * 50, 768),
             ("dino fc1", 8 * (2 * 197 + 10 * 37), 384)]


# ----------------------------------------------------------------------------------------
# Timing and the table
# ----------------------------------------------------------------------------------------


def time_torch(step, repeats):
    """(median seconds of ``repeats`` steps after one warm-up step, every step's loss)."""
    losses, times = [step()], []
    for _ in range(repeats):
        start = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - start)
    return statistics.median(times), losses


def bench_case(name, repeats, matmul_gflops):
    """One table row: ours, then PyTorch, on the case's config and inputs."""
    file, batch_size = CASES[name]
    config = from_file(jax_bench.CONFIGS / file)
    config.batch_size, config.dtype = batch_size, "float32"
    _, ours, flops, our_params = jax_bench.bench_method(config, repeats)
    print(f"  {name}: ours {1000 * ours:.0f} ms/step, {our_params:,} params",
          file=sys.stderr, flush=True)
    torch.manual_seed(0)
    inputs = torch_inputs(config)
    step, model = TORCH_STEPS[name](config, inputs)
    theirs, losses = time_torch(step, repeats)
    torch_params = sum(p.numel() for p in trainable(model))
    print(f"  {name}: PyTorch {1000 * theirs:.0f} ms/step, {torch_params:,} params, "
          f"losses {', '.join(f'{x:.4f}' for x in losses)}", file=sys.stderr, flush=True)
    if not (all(math.isfinite(x) for x in losses)
            and all(bool(torch.isfinite(p).all()) for p in model.parameters())):
        raise SystemExit(f"{name}: the PyTorch step produced a non-finite loss or parameter.")
    b = batch_size
    crops = " + ".join(f"{len(x) // b}x{x.shape[-1]}" for x in inputs.values())
    # The most our step could reach: every one of its FLOPs at the plain matmul's rate.
    bound = theirs * matmul_gflops / (flops / 1e9)
    return [name, config.model.backbone, f"{crops} px", str(b), f"{our_params / 1e6:.3f}",
            f"{torch_params / 1e6:.3f}", f"{flops / 1e9:.0f}", f"{1000 * ours:.0f}",
            f"{1000 * theirs:.0f}", f"{b / ours:.3g}", f"{b / theirs:.3g}",
            f"{flops / ours / 1e9:.0f}", f"{flops / theirs / 1e9:.0f}", f"{theirs / ours:.2f}",
            f"{bound:.2f}"]


def gemm_row(label, m, k, repeats=10):
    """Both libraries' GFLOP/s on one float32 [m, k] @ [k, 4k] product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), np.float32)
    b = rng.standard_normal((k, 4 * k), np.float32)
    _, ours = benchlib.time_fn(lambda a, b: a @ b, (a, b), repeats)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ta @ tb  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        ta @ tb
    theirs = (time.perf_counter() - start) / repeats
    flops = 2 * m * k * 4 * k / 1e9
    return [label, f"{m}x{k} @ {k}x{4 * k}", f"{flops / ours:.0f}", f"{flops / theirs:.0f}",
            f"{theirs / ours:.2f}"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return os.uname().machine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    matmul_gflops = 1000 * jax_bench.matmul_tflops()
    rows = [bench_case(name, args.repeats, matmul_gflops)
            for name in benchlib.selected_names(parser, list(CASES), args.only)]
    header = ["case", "model", "crops/image", "batch", "M params ours", "M params torch",
              "GFLOP/step", "ours ms/step", "torch ms/step", "ours img/s", "torch img/s",
              "ours GFLOP/s", "torch GFLOP/s", "ratio", "ratio bound"]
    table = benchlib.markdown_table if args.markdown else benchlib.plain_table
    print(f"{cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), jax {jax.__version__} "
          f"({jax.default_backend()}, XLA's default threads); float32; median of "
          f"{args.repeats} steps after 1 warm-up; {datetime.date.today().isoformat()}")
    print(table(header, rows, 3))
    print(f"GFLOP/step: XLA's cost analysis of our compiled step (the PyTorch step does the "
          f"same arithmetic); ratio bound: the ratio our step would reach if all of its FLOPs "
          f"ran at the {matmul_gflops:.0f} GFLOP/s of a jitted 2048x2048 float32 matmul here.")
    print()
    print(table(["matmul", "shape", "XLA GFLOP/s", "torch GFLOP/s", "XLA / torch"],
                [gemm_row(*gemm) for gemm in VIT_GEMMS], 2))


if __name__ == "__main__":
    main()
