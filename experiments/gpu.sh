#!/usr/bin/env bash
# Pretrain on GPUs: all GPUs of this machine (one process), or a SLURM allocation (one
# process per node; jax.distributed reads SLURM's environment).
#
#   experiments/gpu.sh CONFIG WORKDIR [--config.key=value ...]            # this machine
#   sbatch --nodes=4 --gpus-per-node=8 experiments/gpu.sh CONFIG WORKDIR   # SLURM
#
# Install first: pip install -U 'jax[cuda12]' -e .   Re-running resumes from WORKDIR.
set -euo pipefail
if [[ $# -lt 2 ]]; then sed -n 2,9p "$0"; exit 2; fi
CONFIG=$1 WORKDIR=$2
shift 2
export TF_CPP_MIN_LOG_LEVEL=2  # tf.data runs on the CPU only (jax_ssl.data hides GPUs from TF)
if [[ -n ${SLURM_JOB_ID:-} && ${SLURM_NNODES:-1} -gt 1 ]]; then
  exec srun --ntasks-per-node=1 python -m jax_ssl.train --config "$CONFIG" \
    --workdir "$WORKDIR" --config.distributed.enabled=True "$@"
fi
exec python -m jax_ssl.train --config "$CONFIG" --workdir "$WORKDIR" "$@"
