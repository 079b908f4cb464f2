#!/usr/bin/env bash
# Start a real Slurm cluster of several compute nodes on this machine (Debian 12, run as root), for CI.
#
# Each node nX runs its own slurmd in its own network and UTS namespaces (netns rnX, hostname nX)
# with its own address, spool, pid and log files; the namespaces hang off a host bridge that carries
# the controller's address, and /etc/hosts maps each nX to its address (a marked block).
# The nodes have no route beyond that bridge (like most clusters' compute nodes, they cannot reach
# the internet); munge and the file system are shared.
#
# Idempotent: installs slurm-wlm and munge only if missing, creates a munge key only if missing,
# creates the bridge and namespaces only if missing, rewrites /etc/slurm/slurm.conf from
# .ci/slurm.conf.template only if its content changed (restarting the Slurm daemons in that case),
# starts whichever of munged, slurmctld and the slurmds is not running, waits until every node is
# idle, then checks that `sbatch --wait` runs a job and that `srun -N <nodes>` runs one task on each
# node, at distinct addresses, and that no node has a route out. Exits non-zero with a message on
# the first failure.
#
# No systemd is needed: the daemons are started directly and found again through their pid files.
#
# Settings (environment):
#   SLURM_CI_NODES       number of compute nodes                (default: 2)
#   SLURM_CI_SUBNET      first three octets of the nodes' /24   (default: 10.200.0; bridge .1, nX .(10+X))
#   SLURM_CI_PARTITION   partition name                         (default: debug)
#   SLURM_CI_MEM_HEADROOM_MB  memory kept back from Slurm       (default: 10% of RAM, 512..4096)
#   SLURM_CI_CPUS        CPUs of each node line                 (default: nproc; the nodes share the
#                        machine's cores: task/none does not pin, so a node's CPUs are a job count)
#   SLURM_CI_MIN_JOB_AGE seconds a finished job stays in squeue (default: 86400)
#   SLURM_CI_SKIP_CHECKS=1  skip the sbatch/srun/no-route checks
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/slurm.conf.template"
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
NODES="${SLURM_CI_NODES:-2}"
SUBNET="${SLURM_CI_SUBNET:-10.200.0}"
BRIDGE=slurmbr0
CTLD_ADDR="$SUBNET.1"
node_addr() { echo "$SUBNET.$((10 + $1))"; }  # node_addr X: the address of node nX
slurmd_pid() { echo "/run/slurmd-n$1.pid"; }
MUNGE_PID=/run/munge/munged.pid

say() { echo "[start-slurm] $*"; }
DAEMONS_STARTED=0
die() {
    echo "[start-slurm] ERROR: $*" >&2
    ((DAEMONS_STARTED)) || exit 1
    for log in "$LOGDIR/slurmctld.log" "$LOGDIR"/slurmd-n*.log; do
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

# ---------------------------------------------------------------- 3. network: bridge + one namespace per node
[[ $NODES =~ ^[1-9][0-9]?$ ]] || die "SLURM_CI_NODES must be a number from 1 to 99, not '$NODES'"
command -v ip >/dev/null && command -v nsenter >/dev/null || die "ip (iproute2) and nsenter (util-linux) are needed"
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    say "creating bridge $BRIDGE ($CTLD_ADDR/24)"
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
fi
ip -4 addr show dev "$BRIDGE" | grep -q "inet $CTLD_ADDR/" || ip addr add "$CTLD_ADDR/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for x in $(seq 1 "$NODES"); do
    ns="rn$x"
    if [[ ! -e /run/netns/$ns ]]; then
        say "creating network namespace $ns for node n$x ($(node_addr "$x"), no route out)"
        ip netns add "$ns" || die "cannot create network namespace $ns"
    fi
    if ! ip link show "rvh$x" >/dev/null 2>&1; then
        ip link add "rvh$x" type veth peer name "rvn$x" netns "$ns" || die "cannot create veth pair rvh$x/rvn$x"
    fi
    ip link set "rvh$x" master "$BRIDGE" up
    # Only the bridge's /24 is reachable: no default route, so nothing beyond this machine.
    nsenter --net="/run/netns/$ns" sh -c "
        ip link set lo up
        ip -4 addr show dev rvn$x | grep -q 'inet $(node_addr "$x")/' || ip addr add $(node_addr "$x")/24 dev rvn$x
        ip link set rvn$x up" || die "cannot configure the network of $ns"
done
# Node names resolve, as on a real cluster (gloo, for one, binds to the address of the hostname).
hosts_block="$(for x in $(seq 1 "$NODES"); do echo "$(node_addr "$x") n$x  # rasa-ci-slurm"; done)"
if [[ "$(grep '# rasa-ci-slurm$' /etc/hosts || true)" != "$hosts_block" ]]; then
    say "mapping n1..n$NODES to their addresses in /etc/hosts"
    hosts="$(grep -v '# rasa-ci-slurm$' /etc/hosts || true)"
    printf '%s\n%s\n' "$hosts" "$hosts_block" >/etc/hosts
fi

# ---------------------------------------------------------------- 4. slurm.conf
HOST="$(hostname -s)"
[[ -n $HOST ]] || die "empty hostname"
getent hosts "$HOST" >/dev/null || die "hostname $HOST does not resolve; add it to /etc/hosts"
CPUS="${SLURM_CI_CPUS:-$(nproc)}"
TOTAL_MB="$(free -m | awk '/^Mem:/ {print $2}')"
HEADROOM_MB="${SLURM_CI_MEM_HEADROOM_MB:-$((TOTAL_MB / 10))}"
if [[ -z ${SLURM_CI_MEM_HEADROOM_MB:-} ]]; then
    ((HEADROOM_MB < 512)) && HEADROOM_MB=512
    ((HEADROOM_MB > 4096)) && HEADROOM_MB=4096
fi
# The nodes share the machine's memory: each gets its part, so Slurm never promises more than exists.
MEM_MB=$(((TOTAL_MB - HEADROOM_MB) / NODES))
((MEM_MB >= 256)) || die "RealMemory per node would be ${MEM_MB} MB ((${TOTAL_MB} MB total - ${HEADROOM_MB} MB headroom) / $NODES nodes): too little for a Slurm node"
DEF_MEM=$((MEM_MB / CPUS))
PARTITION="${SLURM_CI_PARTITION:-debug}"
# CryptoType was removed in Slurm 23.11; 22.05 (Debian 12) still wants it.
if [[ ${SLURM_VERSION%%.*} -lt 23 ]]; then CRYPTO_LINE="CryptoType=crypto/munge"; else CRYPTO_LINE=""; fi
node_lines=""
for x in $(seq 1 "$NODES"); do
    node_lines+="NodeName=n$x NodeAddr=$(node_addr "$x") NodeHostname=n$x CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN"$'\n'
done
NODE_NAMES="n[1-$NODES]"
((NODES == 1)) && NODE_NAMES=n1

new_conf="$(mktemp)"
trap 'rm -f "$new_conf"' EXIT
sed -e "s/@HOST@/$HOST/g" -e "s/@CTLD_ADDR@/$CTLD_ADDR/g" -e "s/@NODE_NAMES@/$NODE_NAMES/g" \
    -e "s/@DEF_MEM_PER_CPU@/$DEF_MEM/g" -e "s/@PARTITION@/$PARTITION/g" \
    -e "s/@MIN_JOB_AGE@/${SLURM_CI_MIN_JOB_AGE:-86400}/g" -e "s|@CRYPTO_LINE@|$CRYPTO_LINE|" \
    "$TEMPLATE" | NODE_LINES="${node_lines%$'\n'}" awk '$0 == "@NODE_LINES@" {print ENVIRON["NODE_LINES"]; next} {print}' >"$new_conf"
grep -q '@[A-Z_]*@' "$new_conf" && die "unfilled placeholder in the generated slurm.conf"
say "$NODES nodes n1..n$NODES at $(node_addr 1)..$(node_addr "$NODES"), each CPUs=$CPUS RealMemory=${MEM_MB}MB (of ${TOTAL_MB}MB, ${HEADROOM_MB}MB kept back), DefMemPerCPU=${DEF_MEM}, partition $PARTITION"

install -d -m 755 /etc/slurm "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
running_slurmds() { ls /run/slurmd-n*.pid /run/slurmd.pid 2>/dev/null || true; }
if [[ -f $CONF ]] && cmp -s "$new_conf" "$CONF"; then
    say "$CONF unchanged"
else
    say "writing $CONF"
    install -m 644 "$new_conf" "$CONF"
    # A changed node line or ports need fresh daemons, not `scontrol reconfigure`.
    for pidfile in $(running_slurmds); do stop_pidfile "$pidfile" "slurmd ($pidfile)"; done
    stop_pidfile "$CTLD_PID" slurmctld
fi

# ---------------------------------------------------------------- 5. daemons
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
for x in $(seq 1 "$NODES"); do
    if alive "$(slurmd_pid "$x")"; then
        say "slurmd of n$x already running (pid $(cat "$(slurmd_pid "$x")"))"
    else
        say "starting slurmd of n$x in namespace rn$x (log $LOGDIR/slurmd-n$x.log)"
        install -d -m 755 "/var/spool/slurmd/n$x"
        # nsenter, not `ip netns exec`: the latter remounts /sys, and slurmd then finds no cgroup fs.
        # A UTS namespace of its own: the node's tasks see hostname nX.
        nsenter --net="/run/netns/rn$x" unshare --uts sh -c "hostname n$x && exec slurmd -N n$x" \
            || die "slurmd of n$x failed to start"
        wait_pidfile "$(slurmd_pid "$x")" "slurmd of n$x"
    fi
done

say "waiting for nodes $NODE_NAMES to be idle"
for x in $(seq 1 "$NODES"); do
    state=""
    for i in $(seq 1 60); do
        state="$(sinfo -h -n "n$x" -o %T 2>/dev/null | head -n 1)"
        case "$state" in
            idle|mixed|allocated|completing) break ;;
            down*|drain*|inval*|fail*)
                # ReturnToService=2 brings a DOWN node back once slurmd registers; give it time.
                ((i > 10)) && scontrol update NodeName="n$x" State=RESUME 2>/dev/null || true ;;
        esac
        ((i == 60)) && die "node n$x is '$state', not idle, after 60 s: $(sinfo -h -R -n "n$x" -o '%E' | head -n 1)"
        sleep 1
    done
    say "node n$x is $state"
done
sinfo

# ---------------------------------------------------------------- 6. checks
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
say "check: srun -N $NODES -n $NODES: one task per node, each at its node's address"
# shellcheck disable=SC2016  # expanded by the task, on its node
got="$(timeout 120 srun -p "$PARTITION" -t 2 -N "$NODES" -n "$NODES" -J ci-check \
    sh -c 'echo "$(hostname) $(hostname -I)"' | sort)" || die "srun -N $NODES -n $NODES failed"
say "srun tasks: $(tr '\n' ';' <<<"$got")"
[[ $(awk '{print $1}' <<<"$got" | sort -u | wc -l) -eq $NODES ]] || die "srun tasks did not run on $NODES distinct hosts: $got"
[[ $(awk '{print $2}' <<<"$got" | sort -u | wc -l) -eq $NODES ]] || die "srun tasks did not see $NODES distinct addresses: $got"
say "check: no node has a route beyond the bridge"
for x in $(seq 1 "$NODES"); do
    ! nsenter --net="/run/netns/rn$x" ip route get 1.1.1.1 >/dev/null 2>&1 \
        || die "node n$x has a route out of its namespace; compute nodes here must not reach the internet"
done
rm -rf "$out"
say "Slurm $SLURM_VERSION is up: partition $PARTITION, nodes $NODE_NAMES ($CPUS CPUs, ${MEM_MB} MB each)"
