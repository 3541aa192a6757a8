#!/bin/bash
# Proves the Slurm path on a one-node Slurm cluster started here: installs
# Debian's slurm and munge packages when missing (root, Debian or Ubuntu),
# writes a one-node slurm.conf, starts munged, slurmctld and slurmd,
# submits deploy/slurm/sweep.sbatch as a job array of N shards with a merge
# job that waits on it (afterok), and checks the merged run folder
# byte-identical, table for table, to the same scenario run in one process.
#
#   deploy/slurm/try-local.sh [SCENARIO.toml] [N]
#   (default: scenarios/pricing-sweep.toml, 4 shards)
#
# Everything it writes goes under $WORK (default: a new folder in /tmp);
# the daemons are stopped when it ends.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
scenario=$(realpath "${1:-$here/scenarios/pricing-sweep.toml}")
shards=${2:-4}
work=${WORK:-$(mktemp -d /tmp/shoplab-slurm.XXXXXX)}
mkdir -p "$work"
say() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "try-local.sh starts slurm and munge daemons: run it as root (or in a container)" >&2
    exit 1
fi

say "packages"
missing=()
for tool in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$work/apt.log"
fi
dpkg-query -W -f '${Package} ${Version}\n' slurmctld slurmd slurm-client munge 2>/dev/null || true

say "shoplab"
shoplab=${SHOPLAB:-$here/target/release/shoplab}
if [ ! -x "$shoplab" ]; then
    (cd "$here" && cargo build --release --quiet --bin shoplab)
fi
"$shoplab" --version

say "a one-node cluster"
node=$(hostname -s)
cpus=$(nproc)
memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=shoplab-try
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=$node CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
stop() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
}
trap stop EXIT
stop
sleep 1
runuser -u munge -- /usr/sbin/munged
slurmctld
slurmd
for _ in $(seq 1 30); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then break; fi
    sleep 1
done
sinfo

say "the sweep as a job array of $shards shards, and the merge after it"
results=$work/results
cd "$here"
export SHOPLAB=$shoplab
array=$(sbatch --parsable --array=1-"$shards" --cpus-per-task=1 --time=00:30:00 \
    --output="$work/shard-%a.out" deploy/slurm/sweep.sbatch "$scenario" "$results")
merge=$(sbatch --parsable --dependency=afterok:"$array" --cpus-per-task=1 \
    --output="$work/merge.out" deploy/slurm/sweep.sbatch --merge "$scenario" "$results" "$shards")
echo "array job $array, merge job $merge"
squeue
deadline=$((SECONDS + 1800))
while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do
    if [ $SECONDS -gt $deadline ]; then echo "the jobs did not finish in 30 minutes" >&2; exit 1; fi
    sleep 2
done
for k in $(seq 1 "$shards"); do
    echo "-- shard $k"
    cat "$work/shard-$k.out"
done
echo "-- merge"
cat "$work/merge.out"
sacct_state=$(scontrol show job "$merge" 2>/dev/null | grep -o 'JobState=[A-Z]*' || true)
echo "merge job: ${sacct_state:-finished}"

say "the merged run folder against one process"
name=$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$scenario" | head -n 1)
name=${name:-$(basename "$scenario" .toml)}
merged=$(find "$results/$name" -mindepth 1 -maxdepth 1 -type d ! -name 'shard-*' ! -name '.*' | sort | head -n 1)
[ -n "$merged" ] || { echo "no merged run folder under $results/$name" >&2; exit 1; }
"$shoplab" verify "$merged"
single=$work/single
"$shoplab" run "$scenario" --results "$single" --quiet >/dev/null
one=$(find "$single/$name" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -n 1)
tables() { (cd "$1" && find . -name '*.csv' -o -name scenario.toml | sort | xargs sha256sum); }
if diff <(tables "$one") <(tables "$merged") >"$work/diff.txt"; then
    echo "byte-identical: $(tables "$merged" | wc -l) tables of $merged and $one"
else
    echo "the merged run differs from the single-process run:" >&2
    cat "$work/diff.txt" >&2
    exit 1
fi
