#!/usr/bin/env bash
# A real single-node SLURM on this machine (Debian/Ubuntu, as root, no systemd), for
# tests/test_slurm.py. Idempotent: installs slurmctld/slurmd/slurm-client/munge if missing, writes
# slurm.conf with this machine's CPUs and memory (nproc, /proc/meminfo), starts munged, slurmctld
# and slurmd if they are not running, and waits until the node is idle.
#   exit 0: SLURM is up (`sinfo` shows node localhost idle)
#   exit 2: this machine cannot run it (not root, no apt-get); the message says why
#   other:  a real failure; the message and /var/log/slurm/*.log say why
set -euo pipefail

log() { echo "start_slurm: $*" >&2; }
unsupported() { log "cannot start SLURM here: $*"; exit 2; }

CONF=/etc/slurm/slurm.conf
PACKAGES=(slurmctld slurmd slurm-client munge)

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    [[ $(id -u) -eq 0 ]] || unsupported "SLURM is not installed and this is not root"
    command -v apt-get >/dev/null || unsupported "SLURM is not installed and there is no apt-get"
    log "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    fi
fi
[[ $(id -u) -eq 0 ]] || unsupported "starting slurmd and munged needs root"

# --- munge: one key, one daemon ------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --force --keyfile /etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null
fi

# --- slurm.conf from this machine's size -----------------------------------------------------------
cpus=$(nproc)
mem_total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)   # MB, as `free -m`
real_memory=$(( mem_total * 9 / 10 ))   # above the machine's memory the node drains
mkdir -p /etc/slurm /var/lib/slurm/slurmd /var/lib/slurm/slurmctld /var/log/slurm
chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
new_conf=$(cat <<EOF
# Written by .ci/start_slurm.sh: one node, no cgroups, no accounting database (status via squeue).
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
# Finished jobs stay visible to squeue for 5 minutes (Snakemake's status query needs that).
MinJobAge=300
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/lib/slurm/slurmd
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)

running() {  # running <pidfile>
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}
stop() {  # stop <pidfile>: only the daemon this file names
    if running "$1"; then
        local pid; pid=$(cat "$1")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}

if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$new_conf" ]]; then
    log "writing $CONF (CPUs=$cpus RealMemory=$real_memory)"
    printf '%s\n' "$new_conf" > "$CONF"
    stop /run/slurmd.pid
    stop /run/slurmctld.pid
fi

if ! running /run/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld
fi
if ! running /run/slurmd.pid; then
    log "starting slurmd"
    slurmd -N localhost
fi

# --- wait for the node ---------------------------------------------------------------------------
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    case $state in
        idle|mixed|allocated) break ;;
        drain*|down*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case $state in
    idle|mixed|allocated) log "node localhost is $state ($(sinfo -h -o '%c CPUs, %m MB' | head -1))" ;;
    *) log "node localhost is '${state:-unknown}' after 30 s; see /var/log/slurm/"; tail -5 /var/log/slurm/*.log >&2; exit 1 ;;
esac
