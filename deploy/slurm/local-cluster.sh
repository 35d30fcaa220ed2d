#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and trials: partitions `cpu` (default) and `gpu`.
#
#   deploy/slurm/local-cluster.sh start  [DIR]   install slurm-wlm + munge when missing, start, print SLURM_CONF
#   deploy/slurm/local-cluster.sh stop   [DIR]   cancel its jobs, stop its daemons (nothing is left running)
#   deploy/slurm/local-cluster.sh status [DIR]   exit 0 when it runs, 1 when not
#
# Everything the cluster has (slurm.conf, munge key and socket, state, spool, logs, job records) lives in
# DIR (default: $EPDI_SLURM_DIR, else /tmp/epdi-slurm); nothing is written elsewhere but the Debian
# packages. Clients find it through SLURM_CONF:  eval "$(deploy/slurm/local-cluster.sh start)"
# Ports: $EPDI_SLURM_PORT (slurmctld, default 6817) and the next one (slurmd), so that two clusters
# in different folders can run side by side.
# The `gpu` partition is the same node (there may be no GPU here); on a real cluster it maps to GPU nodes.
# Up to 4 jobs share a CPU (OverSubscribe=FORCE:4), so that several jobs start at once on a small machine.
# Exit codes: 0 done; 3 Slurm cannot run here (not root, no apt-get, install failed), with one line
# saying why; 1 it was installed but did not come up (see DIR/log).
set -uo pipefail

ACTION=${1:-}
DIR=${2:-${EPDI_SLURM_DIR:-/tmp/epdi-slurm}}
PORT=${EPDI_SLURM_PORT:-6817}
CONF=$DIR/etc/slurm.conf
MUNGE_SOCKET=$DIR/munge/munge.socket
export SLURM_CONF=$CONF

say() { echo "local-cluster: $*" >&2; }
cannot() { echo "local-cluster: cannot start Slurm here: $*" >&2; exit 3; }

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

running() {
    pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid" && pid_alive "$DIR/munge/munged.pid"
}

install_packages() {
    local missing=()
    for tool in slurmctld slurmd sbatch munged mungekey; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || cannot "${missing[*]} missing and not root (run as root, or apt-get install slurm-wlm munge)"
    command -v apt-get >/dev/null 2>&1 || cannot "${missing[*]} missing and no apt-get (install slurm-wlm and munge)"
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq slurm-wlm munge >"$DIR/log/apt.log" 2>&1; then
        apt-get update -qq >>"$DIR/log/apt.log" 2>&1
        apt-get install -y -qq slurm-wlm munge >>"$DIR/log/apt.log" 2>&1 \
            || cannot "apt-get install slurm-wlm munge failed (see $DIR/log/apt.log)"
    fi
}

write_conf() {
    local host node
    host=$(hostname -s)
    # the node as slurmd sees it (CPUs, sockets, cores, memory), so that it is not drained for a mismatch
    node=$(slurmd -C 2>/dev/null | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")
    [[ $node == NodeName=* ]] || node="NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc)"
    cat >"$CONF" <<EOF
# written by deploy/slurm/local-cluster.sh; regenerated at every start
ClusterName=epdi-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
$node State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE OverSubscribe=FORCE:4 State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE OverSubscribe=FORCE:4 State=UP
EOF
}

start_munge() {
    pid_alive "$DIR/munge/munged.pid" && return 0
    mkdir -p "$DIR/munge/private"
    chmod 755 "$DIR" "$DIR/munge"
    chmod 700 "$DIR/munge/private"
    [[ -s $DIR/munge/private/munge.key ]] || mungekey -c -k "$DIR/munge/private/munge.key" || return 1
    munged --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/private/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/private/munged.seed"
}

wait_idle() {
    local host state
    host=$(hostname -s)
    for _ in $(seq 1 60); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1)
        case $state in
            idle* | mixed* | allocated*) return 0 ;;
            down* | drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 ;;
        esac
        sleep 1
    done
    return 1
}

start() {
    if running; then
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || cannot "not root (slurmd needs root to start jobs as their users)"
    mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log" || cannot "cannot write $DIR"
    install_packages
    stop_daemons quiet
    write_conf
    start_munge || { say "munged did not start (see $DIR/log/munged.log)"; exit 1; }
    slurmctld -f "$CONF" || { say "slurmctld did not start (see $DIR/log/slurmctld.log)"; stop_daemons quiet; exit 1; }
    slurmd -f "$CONF" -N "$(hostname -s)" || { say "slurmd did not start (see $DIR/log/slurmd.log)"; stop_daemons quiet; exit 1; }
    if ! wait_idle; then
        say "the node did not become idle within 60 s (see $DIR/log/slurmctld.log and slurmd.log)"
        stop_daemons quiet
        exit 1
    fi
    say "running: partitions $(sinfo -h -o %P | tr '\n' ' ')(state in $DIR)"
    echo "export SLURM_CONF=$CONF"
}

stop_pid() {  # PIDFILE NAME: TERM, wait up to 15 s, then KILL
    local file=$1 pid
    [[ -s $file ]] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$file"
}

stop_daemons() {
    if pid_alive "$DIR/run/slurmctld.pid" && command -v scancel >/dev/null 2>&1; then
        scancel --full --quiet --user="$(id -un)" 2>/dev/null
        for _ in $(seq 1 40); do  # jobs end (their steps too) before slurmd goes
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
    stop_pid "$DIR/run/slurmd.pid"
    stop_pid "$DIR/run/slurmctld.pid"
    stop_pid "$DIR/munge/munged.pid"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    [[ ${1:-} == quiet ]] || say "stopped (state kept in $DIR)"
}

case $ACTION in
    start) start ;;
    stop) stop_daemons ;;
    status)
        if running; then
            say "running (SLURM_CONF=$CONF)"
            sinfo 2>/dev/null
            exit 0
        fi
        say "not running ($DIR)"
        exit 1
        ;;
    *)
        echo "usage: $0 start|stop|status [DIR]" >&2
        exit 2
        ;;
esac
