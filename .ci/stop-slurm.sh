#!/usr/bin/env bash
# Stop the Slurm started by .ci/start-slurm.sh: every node's slurmd, slurmctld, then munged, and
# remove the nodes' network namespaces (rnX), their veth pairs, the bridge slurmbr0 and the nodes'
# block in /etc/hosts.
# Each daemon is found through its pid file, so nothing else is touched. Idempotent.
# Keeps packages, /etc/slurm/slurm.conf, the munge key and the state under /var/spool
# (pass --purge-state to remove /var/spool/slurmctld and /var/spool/slurmd too, which forgets
# all jobs and restarts job ids at 1).
set -euo pipefail

say() { echo "[stop-slurm] $*"; }
[[ $(id -u) -eq 0 ]] || { echo "[stop-slurm] ERROR: must run as root" >&2; exit 1; }

stop_pidfile() {  # stop_pidfile PIDFILE NAME
    local pid i
    if [[ ! -s $1 ]] || ! kill -0 "$(cat "$1")" 2>/dev/null; then
        say "$2 not running"
        return 0
    fi
    pid="$(cat "$1")"
    say "stopping $2 (pid $pid)"
    kill "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
        sleep 0.2
    done
    echo "[stop-slurm] ERROR: $2 (pid $pid) did not stop within 20 s" >&2
    exit 1
}

# /run/slurmd.pid: a single-node slurmd of an older version of start-slurm.sh.
for pidfile in /run/slurmd-n*.pid /run/slurmd.pid; do
    [[ -e $pidfile ]] && stop_pidfile "$pidfile" "slurmd ($pidfile)"
done
stop_pidfile /run/slurmctld.pid slurmctld
stop_pidfile /run/munge/munged.pid munged
for ns in /run/netns/rn*; do
    [[ -e $ns ]] || continue
    say "removing network namespace ${ns##*/} (its veth pair goes with it)"
    ip netns delete "${ns##*/}"
done
if ip link show slurmbr0 >/dev/null 2>&1; then
    say "removing bridge slurmbr0"
    ip link delete slurmbr0
fi
if grep -q '# rasa-ci-slurm$' /etc/hosts; then
    say "removing the nodes' lines from /etc/hosts"
    hosts="$(grep -v '# rasa-ci-slurm$' /etc/hosts)"
    printf '%s\n' "$hosts" >/etc/hosts
fi
if [[ ${1:-} == --purge-state ]]; then
    say "removing Slurm state in /var/spool/slurmctld and /var/spool/slurmd"
    rm -rf /var/spool/slurmctld /var/spool/slurmd
fi
say "done"
