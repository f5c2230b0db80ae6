#!/usr/bin/env bash
# A real single-node Slurm on localhost, and the book's experiments as Slurm jobs through submitit:
#  1. installs Debian's slurmctld, slurmd and munge (root; apt) unless present, configures and starts them;
#  2. runs chapter 08's experiments (full-image and ground-truth-crop models as one job array, the cascades as a
#     second array after them) with --executor slurm, and again with --executor local, in two run stores, and
#     checks that every metrics file is the same;
#  3. starts one long training as a Slurm job, cancels it after a checkpoint, submits it again, and checks that
#     the second start resumed from the checkpoint and that the result equals an uninterrupted local run;
#  4. stops the daemons.
# Usage: bash scripts/slurm-test.sh   (make test-slurm). Needs root; about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CMRLIB=${CMRLIB:-.venv/bin/cmrlib}
WORK=$(mktemp -d /tmp/slurm-test.XXXX)
export CMRLIB_DATA=${CMRLIB_DATA:-$PWD/data}
say() { echo "[slurm-test] $*"; }

if [ "$(id -u)" != 0 ]; then say "needs root (it installs and starts the Slurm daemons)"; exit 3; fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurmctld slurmd munge"
  apt-get update -qq && apt-get install -y -qq slurmctld slurmd munge >/dev/null
fi

# ---- munge and a one-node Slurm on this host
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge /var/spool/slurmctld /var/spool/slurmd /etc/slurm
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=cmrlib-test
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
cleanup() {
  scancel --user=root 2>/dev/null || true
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  say "daemons stopped; logs and job folders in $WORK"
}
trap cleanup EXIT
runuser -u munge -- /usr/sbin/munged --force 2>/dev/null || /usr/sbin/munged --force
slurmctld
slurmd
for i in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo
say "Slurm is up on $HOST ($CPUS CPUs)"

# ---- 1-2. a chapter's units through Slurm and as local processes give the same results
# slurm_vs_local CHAPTER RESULTS MODELS: the metrics.csv files (RESULTS of them) and the trained checkpoints (MODELS)
# of both runs, the same files with the same metrics
slurm_vs_local() {
  CMRLIB_RUNS=$WORK/runs$1-slurm $CMRLIB run --params params/cluster_test.yaml --only $1 --executor slurm > $WORK/slurm$1.out
  CMRLIB_RUNS=$WORK/runs$1-local $CMRLIB run --params params/cluster_test.yaml --only $1 --executor local > $WORK/local$1.out
  $PY - "$WORK/runs$1-slurm" "$WORK/runs$1-local" "$@" <<'PY'
import sys
from pathlib import Path
slurm, local, ch, results, models = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
a = {p.relative_to(slurm): p.read_text() for p in slurm.rglob("metrics.csv")}
b = {p.relative_to(local): p.read_text() for p in local.rglob("metrics.csv")}
assert len(a) == results, f"chapter {ch}: expected {results} results, found {sorted(map(str, a))}"
assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
diff = [str(k) for k in a if a[k] != b[k]]
assert not diff, f"chapter {ch}: metrics differ between Slurm and local: {diff}"
trained = [sorted(p.parent.relative_to(r) for p in r.rglob("checkpoint.pt")) for r in (slurm, local)]
assert trained[0] == trained[1] and len(trained[0]) == models, (ch, trained)
print(f"[slurm-test] chapter {ch}: {len(a)} results of {models} trained models, the same from Slurm jobs and from "
      "local processes")
PY
}
slurm_vs_local 08 5 8      # the baseline and 4 cascades, over 8 trained models (4 full-image, 4 ground-truth-crop)
slurm_vs_local 15 16 17    # chapter 15's 15 points and its 2-fold ensemble (the ensemble's 2 fold models)

# ---- 3. kill a Slurm job mid-training, submit it again: it resumes from its checkpoint (chapter 13: one model)
RUNS=$WORK/runs-kill
CMRLIB_RUNS=$RUNS $CMRLIB run --params params/cluster_test_long.yaml --only 13 --executor slurm > $WORK/kill1.out 2>&1 &
CLI=$!
for i in $(seq 480); do      # the log gains its rows at each checkpoint: cancel once two are written
  LOG=$(ls $RUNS/cluster_test_long/baseline-*/train_log.csv 2>/dev/null | head -1 || true)
  [ -n "$LOG" ] && [ "$(wc -l < "$LOG")" -gt 40 ] && break
  sleep 0.5
done
CK=$(dirname "${LOG:-/nonexistent/x}")/checkpoint.pt
[ -e "$CK" ] || CK=
[ -n "${CK:-}" ] || { say "no checkpoint appeared"; exit 1; }
scancel --user=root
# without Slurm accounting (this test's cluster) submitit cannot see that the job was cancelled and would wait for
# its result; on a cluster with accounting it reports the cancellation. Stop the waiting client either way.
sleep 2
kill $CLI 2>/dev/null || true
wait $CLI 2>/dev/null || true
# Slurm sends SIGTERM, which submitit's job ignores, and SIGKILL after KillWait: read the checkpoint once the job
# has really gone
for i in $(seq 120); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 1; done
STEP=$($PY -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=False)['step'])" "$CK")
say "cancelled the job at checkpoint step $STEP"
[ ! -e "$(dirname "$CK")/metrics.csv" ] || { say "the job finished before it was cancelled"; exit 1; }
CMRLIB_RUNS=$RUNS $CMRLIB run --params params/cluster_test_long.yaml --only 13 --executor slurm > $WORK/kill2.out
CMRLIB_RUNS=$WORK/runs-whole $CMRLIB run --params params/cluster_test_long.yaml --only 13 --executor local > $WORK/whole.out
$PY - "$WORK" "$STEP" <<'PY'
import sys
from pathlib import Path
work, step = Path(sys.argv[1]), int(sys.argv[2])
run = next((work / "runs-kill" / "cluster_test_long").glob("baseline-*"))
starts = [l for l in (run / "events.log").read_text().splitlines() if " start at step " in l]
assert len(starts) == 2 and " start at step 0 " in starts[0], starts
resumed = int(starts[1].split(" start at step ")[1].split()[0])
assert resumed == step > 0, (resumed, step)
whole = next((work / "runs-whole" / "cluster_test_long").glob("baseline-*"))
assert (run / "metrics.csv").read_text() == (whole / "metrics.csv").read_text(), "resumed result differs"
print(f"[slurm-test] resumed at step {resumed} after the cancel; the result equals an uninterrupted run")
PY
say "passed"
