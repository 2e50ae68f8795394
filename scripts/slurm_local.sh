#!/usr/bin/env bash
# A single-node Slurm cluster on loopback, for tests and for trying the launchers locally.
#
#   scripts/slurm_local.sh start    # install slurm-wlm + munge if missing, write slurm.conf, start daemons
#   scripts/slurm_local.sh status   # daemons and `sinfo`
#   scripts/slurm_local.sh stop     # stop the daemons started by `start` (by pid), keep the folder
#   scripts/slurm_local.sh env      # print `export SLURM_CONF=...` (eval "$(scripts/slurm_local.sh env)")
#
# Everything (slurm.conf, state, spool, logs, pid files) lives under $SLURM_LOCAL_DIR
# (default /tmp/torchrl_newt_slurm). Ports are non-default ($SLURM_LOCAL_PORT and +1,
# default 16817/16818) so a real Slurm install on the machine is left alone. Needs root
# (SlurmUser=root, apt-get). Every command is idempotent: `start` on a running cluster only
# checks it, `stop` on a stopped one does nothing.
set -euo pipefail

DIR="${SLURM_LOCAL_DIR:-/tmp/torchrl_newt_slurm}"
PORT="${SLURM_LOCAL_PORT:-16817}"
CONF="$DIR/slurm.conf"
MUNGE_DIR="$DIR/munge"
HOST="$(hostname -s)"
CPUS="$(nproc --all)"
export SLURM_CONF="$CONF"

log() { echo "[slurm_local] $*" >&2; }

alive() {  # alive PIDFILE -> 0 if the process in PIDFILE runs
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "slurm-wlm/munge are missing and installing them needs root"; exit 1
    fi
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$MUNGE_DIR"
    local mem
    mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 8 / 10 ))
    cat >"$CONF" <<EOF
# written by scripts/slurm_local.sh: single node on loopback
ClusterName=newtlocal
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
MinJobAge=300
KillWait=10
SchedulerParameters=defer_batch=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if alive "$MUNGE_DIR/munged.pid"; then return; fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then mungekey --create --force; else
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
    fi
    # the default socket (/run/munge) is where Slurm's auth/munge plugin looks
    mkdir -p /run/munge
    chown munge:munge /run/munge 2>/dev/null || true
    local user=root
    id munge >/dev/null 2>&1 && user=munge
    if [[ "$user" == munge ]]; then
        chown -R munge:munge "$MUNGE_DIR"
        runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_DIR/munged.pid" \
            --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
    else
        /usr/sbin/munged --force --pid-file="$MUNGE_DIR/munged.pid" \
            --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
    fi
}

wait_idle() {
    local i
    for i in $(seq 1 60); do
        if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then return 0; fi
        sleep 0.5
    done
    log "node did not come up; see $DIR/log/"; return 1
}

start() {
    install_packages
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        log "already running ($CONF)"
    else
        write_conf
        start_munge
        alive "$DIR/slurmctld.pid" || /usr/sbin/slurmctld -f "$CONF"
        alive "$DIR/slurmd.pid" || /usr/sbin/slurmd -f "$CONF"
    fi
    wait_idle
    # a node left DOWN/DRAIN by an earlier run comes back
    scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    log "up: export SLURM_CONF=$CONF"
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE
    if alive "$2"; then
        local pid
        pid="$(cat "$2")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
        log "stopped $1 (pid $pid)"
    fi
    rm -f "$2"
}

stop() {
    if [[ -f "$CONF" ]] && alive "$DIR/slurmctld.pid"; then
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    fi
    stop_pidfile slurmd "$DIR/slurmd.pid"
    stop_pidfile slurmctld "$DIR/slurmctld.pid"
    stop_pidfile munged "$MUNGE_DIR/munged.pid"
}

status() {
    local rc=0 name pidfile
    for name in munged slurmctld slurmd; do
        pidfile="$DIR/$name.pid"
        [[ $name == munged ]] && pidfile="$MUNGE_DIR/munged.pid"
        if alive "$pidfile"; then echo "$name: running (pid $(cat "$pidfile"))"; else echo "$name: stopped"; rc=1; fi
    done
    if [[ $rc == 0 ]]; then echo "SLURM_CONF=$CONF"; sinfo; fi
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
