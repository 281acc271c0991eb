#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine (Debian's slurm-wlm + munge), for the test suite's Slurm
# sweep (tests/test_slurm.py) and for trying hydra/launcher=slurm without a cluster:
#
#   sudo launchers/local_slurm/start.sh        # installs if missing, starts, checks sbatch + srun
#   launchers/local_slurm/stop.sh              # stops the daemons it started
#
# Idempotent: a cluster that already answers is left as it is. Runs as root (apt-get, daemons, /etc/slurm).
# An /etc/slurm/slurm.conf that this script did not write (a real cluster's) is never touched.
# Exit status 0: the cluster runs jobs; otherwise one line on stderr says why (the Slurm tests then skip).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CONF=/etc/slurm/slurm.conf
STATE=/var/spool/introspection-slurm
MARK="# introspection local_slurm"

fail() { echo "local_slurm: $*" >&2; exit 1; }

cluster_answers() { timeout 10 sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || fail "slurm-wlm/munge are not installed and installing them needs root"
  command -v apt-get >/dev/null || fail "slurm-wlm/munge are not installed and there is no apt-get here"
  echo "local_slurm: installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; } \
    || fail "apt-get install slurm-wlm munge failed"
}

write_conf() {
  if [ -f "$CONF" ] && ! head -n1 "$CONF" | grep -qx "$MARK"; then
    fail "$CONF exists and was not written by this script: not touching a real cluster's config"
  fi
  local cpus mem_mb
  cpus="$(nproc)"
  mem_mb="$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"  # leave the OS a fifth
  mkdir -p /etc/slurm "$STATE/slurmctld" "$STATE/slurmd"
  { echo "$MARK"; sed -e "s|@HOST@|$(hostname -s)|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$cpus|g" \
      -e "s|@MEMORY_MB@|$mem_mb|g" "$HERE/slurm.conf.in"; } > "$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- munged || fail "munged did not start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "munge does not answer (see /var/log/munge/munged.log)"
}

start_daemons() {
  pgrep -x slurmctld >/dev/null || slurmctld || fail "slurmctld did not start (see $STATE/slurmctld.log)"
  pgrep -x slurmd >/dev/null || slurmd || fail "slurmd did not start (see $STATE/slurmd.log)"
  for i in $(seq 150); do
    cluster_answers && return 0
    # a node left down, drained or invalid by an earlier run (saved state) comes back
    if [ $((i % 10)) = 0 ] && timeout 5 sinfo -h -N -o %T 2>/dev/null | grep -Eq 'down|drain|inval'; then
      scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    fi
    sleep 0.2
  done
  fail "the node is not idle after 30 s: $(sinfo -h -N -o '%N %T %E' 2>&1 | head -n1)"
}

check_jobs() {
  # a batch job whose srun step runs: what every submitit job does
  local out
  out="$(mktemp)"
  timeout 60 sbatch --wait --quiet --time=1 --cpus-per-task=1 --mem=100M --output="$out" \
      --wrap='srun --ntasks=1 sh -c "echo step-ran"' >/dev/null 2>&1 \
    || { rm -f "$out"; fail "a test job (sbatch + srun) failed: $(sinfo -h -N -o '%N %T %E' 2>&1 | head -n1)"; }
  grep -q step-ran "$out" || { rm -f "$out"; fail "a test job ran but its srun step printed nothing"; }
  rm -f "$out"
}

if cluster_answers; then
  echo "local_slurm: a Slurm cluster already answers ($(sinfo -h -o '%P %D node(s) %T' | head -n1))"
  exit 0
fi
[ "$(id -u)" = 0 ] || fail "no Slurm cluster answers, and starting one needs root"
install_packages
write_conf
start_munge
start_daemons
check_jobs
echo "local_slurm: Slurm $(sinfo --version | awk '{print $2}') runs on $(hostname -s): $(sinfo -h -N -o '%c CPUs, %m MB, %T' | head -n1)"
