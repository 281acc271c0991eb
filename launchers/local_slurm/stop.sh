#!/usr/bin/env bash
# Stops the one-node cluster of launchers/local_slurm/start.sh (slurmctld, slurmd; munged stays, it is harmless).
set -euo pipefail
head -n1 /etc/slurm/slurm.conf 2>/dev/null | grep -qx "# introspection local_slurm" \
  || { echo "local_slurm: /etc/slurm/slurm.conf is not ours; not stopping anything" >&2; exit 1; }
scontrol shutdown >/dev/null 2>&1 || true
for _ in $(seq 100); do
  pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || { echo "local_slurm: slurmctld and slurmd stopped"; exit 0; }
  sleep 0.1
done
echo "local_slurm: slurmctld/slurmd still running 10 s after scontrol shutdown" >&2
exit 1
