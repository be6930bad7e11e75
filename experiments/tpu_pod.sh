#!/usr/bin/env bash
# Pretrain on a Cloud TPU VM slice: create it, install jax-ssl on every worker, launch
# the same command on all of them (jax.distributed finds its peers on TPU pods).
#
#   experiments/tpu_pod.sh NAME ZONE ACCELERATOR CONFIG WORKDIR [--config.key=value ...]
#   experiments/tpu_pod.sh ssl-simclr us-central2-b v4-32 configs/simclr_imagenet.py \
#       gs://BUCKET/runs/simclr --config.data.data_dir=gs://BUCKET/tensorflow_datasets
#
# WORKDIR must be a gs:// path every worker can write. Re-running the script resumes
# from the latest checkpoint (a preempted slice gets SIGTERM, which saves first).
# Set CREATE=0 to reuse an existing slice, VERSION to pick the TPU software version.
set -euo pipefail
if [[ $# -lt 5 ]]; then sed -n 2,12p "$0"; exit 2; fi
NAME=$1 ZONE=$2 ACCELERATOR=$3 CONFIG=$4 WORKDIR=$5
shift 5
VERSION=${VERSION:-tpu-ubuntu2204-base}
REPO=$(cd "$(dirname "$0")/.." && pwd)

if [[ ${CREATE:-1} == 1 ]]; then
  gcloud compute tpus tpu-vm create "$NAME" --zone "$ZONE" \
    --accelerator-type "$ACCELERATOR" --version "$VERSION"
fi
ssh_all() {
  gcloud compute tpus tpu-vm ssh "$NAME" --zone "$ZONE" --worker=all --command "$1"
}
# Ship this checkout (not a released package) so every worker runs the same code.
tar -C "$REPO" --exclude .venv --exclude runs --exclude .git -czf /tmp/jax_ssl_src.tgz .
gcloud compute tpus tpu-vm scp /tmp/jax_ssl_src.tgz "$NAME":~/ --zone "$ZONE" --worker=all
ssh_all "mkdir -p ~/jax_ssl && tar -xzf ~/jax_ssl_src.tgz -C ~/jax_ssl && \
  python3 -m pip install -q -U 'jax[tpu]' -e ~/jax_ssl"
ssh_all "cd ~/jax_ssl && nohup python3 -m jax_ssl.train --config $CONFIG --workdir $WORKDIR \
  --config.distributed.enabled=True $* > ~/train.log 2>&1 &"
echo "launched on every worker of $NAME; follow with:"
echo "  gcloud compute tpus tpu-vm ssh $NAME --zone $ZONE --worker=0 --command 'tail -f ~/train.log'"
