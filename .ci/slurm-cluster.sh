#!/usr/bin/env bash
# A single-node SLURM cluster on 127.0.0.1 for the SLURM stage of CI (and for
# trying the SLURM profile on a workstation). Needs root and Debian's packages.
#
#   .ci/slurm-cluster.sh start DIR   install slurm-wlm + munge if missing, write
#                                    DIR/slurm.conf, start munged, slurmctld and
#                                    slurmd (PIDs in DIR/*.pid), wait for the node
#   .ci/slurm-cluster.sh stop DIR    stop the daemons by PID and check they are gone
#
# Accounting is off (no slurmdbd): `sacct` does not work, so the plugin polls with
# `squeue` (--slurm-status-command squeue), and MinJobAge keeps finished jobs in
# `squeue --states=all` for an hour, which is the job listing the tests read.
# Anything that goes wrong exits non-zero with a message: the stage never passes
# silently on a machine that cannot run it.
set -euo pipefail

action=${1:?usage: $0 start|stop DIR}
dir=$(realpath -m "${2:?usage: $0 start|stop DIR}")

die() { echo "slurm-cluster: $*" >&2; exit 1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "installing slurm-wlm needs root (or install slurm-wlm and munge yourself)"
    command -v apt-get >/dev/null || die "no apt-get: install slurm-wlm (slurmctld, slurmd) and munge yourself"
    echo "slurm-cluster: installing slurm-wlm and munge from Debian's packages"
    # keep the packages' services from starting: the daemons below are ours
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' RETURN
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 2))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "$what did not come up within ${seconds} s (logs in $dir)"
}

start() {
    [ "$(id -u)" = 0 ] || die "this single-node cluster runs its daemons as root"
    install_packages
    mkdir -p "$dir"/{state,spool,log}
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(free -m | awk '/^Mem:/ {print $2}') * 9 / 10 ))

    # munge: a fresh key, the daemon as the munge user, its socket in /run/munge
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge /var/lib/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    setpriv --reuid=munge --regid=munge --init-groups munged --foreground >"$dir/log/munged.log" 2>&1 &
    echo $! >"$dir/munged.pid"
    wait_for 10 munged sh -c 'munge -n | unmunge'

    cat >"$dir/slurm.conf" <<EOF
ClusterName=lossland-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.daemon.pid
SlurmdPidFile=$dir/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=ci Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    # the commands (sbatch, squeue, scancel) read this file
    export SLURM_CONF="$dir/slurm.conf"
    mkdir -p /etc/slurm && ln -sf "$dir/slurm.conf" /etc/slurm/slurm.conf

    slurmctld -D -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
    echo $! >"$dir/slurmctld.pid"
    wait_for 20 slurmctld scontrol ping
    slurmd -D -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
    echo $! >"$dir/slurmd.pid"
    wait_for 30 "the node ($host)" sh -c "sinfo -h -N -o '%t' | grep -qx idle"
    echo "slurm-cluster: up in $dir: $(sinfo -h -N -o '%N %c CPUs %m MB %t')"
}

stop() {
    local name pid left=""
    for name in slurmd slurmctld munged; do
        [ -f "$dir/$name.pid" ] || continue
        pid=$(cat "$dir/$name.pid")
        kill "$pid" 2>/dev/null || true
    done
    for name in slurmd slurmctld munged; do
        [ -f "$dir/$name.pid" ] || continue
        pid=$(cat "$dir/$name.pid")
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        kill -0 "$pid" 2>/dev/null && left="$left $name($pid)"
        rm -f "$dir/$name.pid"
    done
    [ -z "$left" ] || die "still running after stop:$left"
    for name in slurmctld slurmd slurmstepd munged; do
        pgrep -x "$name" >/dev/null && left="$left $(pgrep -x "$name" | sed "s/^/$name:/" | tr '\n' ' ')"
    done
    [ -z "$left" ] || die "daemons still running after stop:$left"
    [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$dir/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
    echo "slurm-cluster: stopped (no slurmctld, slurmd or munged left)"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop DIR" ;;
esac
