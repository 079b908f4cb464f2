#!/usr/bin/env bash
# Start a real single-node Slurm cluster on this machine (Debian 12, run as root), for CI.
#
# Idempotent: installs slurm-wlm and munge only if missing, creates a munge key only if missing,
# rewrites /etc/slurm/slurm.conf from .ci/slurm.conf.template only if its content changed
# (restarting the Slurm daemons in that case), starts whichever of munged, slurmctld and slurmd
# is not running, waits until the node is idle, then checks that `sbatch --wait` and `srun -n 2`
# run jobs. Exits non-zero with a message on the first failure.
#
# No systemd is needed: the daemons are started directly and found again through their pid files.
#
# Settings (environment):
#   SLURM_CI_PARTITION   partition name                         (default: debug)
#   SLURM_CI_MEM_HEADROOM_MB  memory kept back from Slurm       (default: 10% of RAM, 512..4096)
#   SLURM_CI_CPUS        CPUs of the node line                  (default: nproc)
#   SLURM_CI_MIN_JOB_AGE seconds a finished job stays in squeue (default: 86400)
#   SLURM_CI_SKIP_CHECKS=1  skip the sbatch/srun checks
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/slurm.conf.template"
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

say() { echo "[start-slurm] $*"; }
DAEMONS_STARTED=0
die() {
    echo "[start-slurm] ERROR: $*" >&2
    ((DAEMONS_STARTED)) || exit 1
    for log in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log"; do
        if [[ -s $log ]]; then
            echo "[start-slurm] --- last lines of $log ---" >&2
            tail -n 15 "$log" >&2
        fi
    done
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
[[ -r $TEMPLATE ]] || die "template $TEMPLATE not found"

alive() {  # alive PIDFILE: the process named in PIDFILE is running
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# A daemon that forks and writes its pid file (munged, slurmctld, slurmd): wait for the pid file.
wait_pidfile() {  # wait_pidfile PIDFILE NAME
    local i
    for i in $(seq 1 50); do
        alive "$1" && return 0
        sleep 0.2
    done
    die "$2 did not start (no live pid in $1)"
}

stop_pidfile() {  # stop_pidfile PIDFILE NAME: stop the daemon named in PIDFILE, wait for it
    local pid i
    alive "$1" || return 0
    pid="$(cat "$1")"
    say "stopping $2 (pid $pid)"
    kill "$pid"
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    die "$2 (pid $pid) did not stop"
}

# ---------------------------------------------------------------- 1. packages
missing=()
for pkg in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    # Package scripts try to start the services; there is no init system to do it here, and this
    # script starts them itself, so tell invoke-rc.d not to (policy-rc.d exit 101), then restore.
    policy=/usr/sbin/policy-rc.d
    saved_policy=""
    if [[ -e $policy ]]; then saved_policy="$(mktemp)"; cp -p "$policy" "$saved_policy"; fi
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/start-slurm-apt.log 2>&1 || rc=$?
    if [[ -n $saved_policy ]]; then mv "$saved_policy" "$policy"; else rm -f "$policy"; fi
    ((rc == 0)) || { tail -n 20 /tmp/start-slurm-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
else
    say "slurm-wlm and munge already installed"
fi
for cmd in munged munge unmunge slurmctld slurmd sinfo sbatch srun scontrol; do
    command -v "$cmd" >/dev/null || die "$cmd not found after installing slurm-wlm and munge"
done
SLURM_VERSION="$(slurmctld -V | awk '{print $2}')"
say "Slurm $SLURM_VERSION, munge $(dpkg-query -W -f='${Version}' munge)"

# ---------------------------------------------------------------- 2. munge
getent passwd munge >/dev/null || die "user munge missing (the munge package creates it)"
KEY=/etc/munge/munge.key
new_key=0
if [[ ! -s $KEY ]]; then
    new_key=1
    say "creating munge key $KEY"
    install -d -o munge -g munge -m 700 /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$KEY" --force
    else
        dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none
    fi
else
    say "munge key $KEY exists"
fi
chown munge:munge "$KEY"
chmod 400 "$KEY"
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
if ((new_key)) && alive "$MUNGE_PID"; then
    stop_pidfile "$MUNGE_PID" "munged (it holds the old key)"
fi
if alive "$MUNGE_PID"; then
    say "munged already running (pid $(cat "$MUNGE_PID"))"
else
    say "starting munged"
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock "$MUNGE_PID"
    runuser -u munge -- /usr/sbin/munged || die "munged failed to start (see /var/log/munge/munged.log)"
    wait_pidfile "$MUNGE_PID" munged
fi
munge -n | unmunge >/dev/null || die "munge credential round trip failed"
say "munge works"

# ---------------------------------------------------------------- 3. slurm.conf
HOST="$(hostname -s)"
[[ -n $HOST ]] || die "empty hostname"
# slurmd finds its node line by this name and slurmctld binds to it: it must resolve.
getent hosts "$HOST" >/dev/null || die "hostname $HOST does not resolve; add it to /etc/hosts"
CPUS="${SLURM_CI_CPUS:-$(nproc)}"
TOTAL_MB="$(free -m | awk '/^Mem:/ {print $2}')"
HEADROOM_MB="${SLURM_CI_MEM_HEADROOM_MB:-$((TOTAL_MB / 10))}"
if [[ -z ${SLURM_CI_MEM_HEADROOM_MB:-} ]]; then
    ((HEADROOM_MB < 512)) && HEADROOM_MB=512
    ((HEADROOM_MB > 4096)) && HEADROOM_MB=4096
fi
MEM_MB=$((TOTAL_MB - HEADROOM_MB))
((MEM_MB >= 256)) || die "RealMemory would be ${MEM_MB} MB (${TOTAL_MB} MB total - ${HEADROOM_MB} MB headroom): too little for a Slurm node"
DEF_MEM=$((MEM_MB / CPUS))
PARTITION="${SLURM_CI_PARTITION:-debug}"
# CryptoType was removed in Slurm 23.11; 22.05 (Debian 12) still wants it.
if [[ ${SLURM_VERSION%%.*} -lt 23 ]]; then CRYPTO_LINE="CryptoType=crypto/munge"; else CRYPTO_LINE=""; fi

new_conf="$(mktemp)"
trap 'rm -f "$new_conf"' EXIT
sed -e "s/@HOST@/$HOST/g" -e "s/@CPUS@/$CPUS/g" -e "s/@MEM_MB@/$MEM_MB/g" \
    -e "s/@DEF_MEM_PER_CPU@/$DEF_MEM/g" -e "s/@PARTITION@/$PARTITION/g" \
    -e "s/@MIN_JOB_AGE@/${SLURM_CI_MIN_JOB_AGE:-86400}/g" -e "s|@CRYPTO_LINE@|$CRYPTO_LINE|" \
    "$TEMPLATE" >"$new_conf"
grep -q '@[A-Z_]*@' "$new_conf" && die "unfilled placeholder in the generated slurm.conf"
say "node $HOST: CPUs=$CPUS RealMemory=${MEM_MB}MB (of ${TOTAL_MB}MB, ${HEADROOM_MB}MB kept back), DefMemPerCPU=${DEF_MEM}, partition $PARTITION"

install -d -m 755 /etc/slurm "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
if [[ -f $CONF ]] && cmp -s "$new_conf" "$CONF"; then
    say "$CONF unchanged"
else
    say "writing $CONF"
    install -m 644 "$new_conf" "$CONF"
    # A changed node line or ports need fresh daemons, not `scontrol reconfigure`.
    stop_pidfile "$SLURMD_PID" slurmd
    stop_pidfile "$CTLD_PID" slurmctld
fi

# ---------------------------------------------------------------- 4. daemons
DAEMONS_STARTED=1
if alive "$CTLD_PID"; then
    say "slurmctld already running (pid $(cat "$CTLD_PID"))"
else
    say "starting slurmctld (log $LOGDIR/slurmctld.log)"
    slurmctld || die "slurmctld failed to start"
    wait_pidfile "$CTLD_PID" slurmctld
fi
for i in $(seq 1 50); do
    scontrol ping 2>/dev/null | grep -q "is UP" && break
    ((i == 50)) && die "slurmctld does not answer scontrol ping"
    sleep 0.2
done
if alive "$SLURMD_PID"; then
    say "slurmd already running (pid $(cat "$SLURMD_PID"))"
else
    say "starting slurmd (log $LOGDIR/slurmd.log)"
    slurmd || die "slurmd failed to start"
    wait_pidfile "$SLURMD_PID" slurmd
fi

say "waiting for node $HOST to be idle"
state=""
for i in $(seq 1 60); do
    state="$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1)"
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        down*|drain*|inval*|fail*)
            # ReturnToService=2 brings a DOWN node back once slurmd registers; give it time.
            ((i > 10)) && scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
    esac
    ((i == 60)) && die "node $HOST is '$state', not idle, after 60 s: $(sinfo -h -R -o '%E' | head -n 1)"
    sleep 1
done
say "node $HOST is $state"
sinfo

# ---------------------------------------------------------------- 5. checks
if [[ ${SLURM_CI_SKIP_CHECKS:-0} == 1 ]]; then
    say "skipping job checks (SLURM_CI_SKIP_CHECKS=1)"
    exit 0
fi
out="$(mktemp -d)"
chmod 777 "$out"
say "check: sbatch --wait --wrap hostname"
timeout 120 sbatch --wait -p "$PARTITION" -t 2 -o "$out/sbatch-%j.out" -J ci-check --wrap hostname \
    || die "sbatch --wait --wrap hostname failed"
got="$(cat "$out"/sbatch-*.out 2>/dev/null || true)"
[[ -n $got ]] || die "the sbatch job wrote no output"
say "sbatch job ran on: $got"
ntasks=2
((CPUS < 2)) && ntasks=1
say "check: srun -n $ntasks hostname"
got="$(timeout 120 srun -p "$PARTITION" -t 2 -n "$ntasks" -J ci-check hostname)" \
    || die "srun -n $ntasks hostname failed"
[[ $(wc -l <<<"$got") -eq $ntasks ]] || die "srun -n $ntasks printed: $got"
say "srun tasks ran on: $(tr '\n' ' ' <<<"$got")"
rm -rf "$out"
say "Slurm $SLURM_VERSION is up: partition $PARTITION, node $HOST ($CPUS CPUs, ${MEM_MB} MB)"
