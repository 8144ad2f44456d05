#!/usr/bin/env bash
# Resume issue #22's compute from the committed checkpoints, one heavy job at a time (2 cores), from a frozen
# worktree so that every session runs the same code. Every step resumes where the last session stopped:
#   1. the classification cross-evaluation of knowledge base v2 (scratch/kb-v2.sqlite, rebuilt from
#      knowledge_base/seed/build/kb-v2-checkpoint.json.gz when missing; the checkpoint is refreshed every 20 min),
#      then the shipped seed re-merged from it;
#   2. the equal-time benchmark at 60 s, every classification dataset, seed 0 (seed 1 comes last, step 5);
#   3. the 180 s comparison (metalearn, AutoGluon best_quality) on benchmarks/selections/equal-time-180.json;
#   4. the classification trial study on knowledge base v2 with ensembles (benchmarks/results/warmstart-v2);
#   5. the equal-time benchmark at 60 s, seed 1 (resumes: the runs of seed 0 are kept).
# Commit the checkpoint and the results folders before a session ends (nothing under scratch/ survives it).
# `touch scratch/hold` holds the chain before its next step (a step already running goes on); `rm` releases it.
# A finished benchmark step leaves scratch/done-<step> and is skipped from then on: run again, it would find
# nothing to do but still rewrite its report with the frozen code (older than the report code on main).
#
#   nohup bash benchmarks/kb_v2_chain.sh [SUITE] > /dev/null 2>&1 &     (SUITE: ../shared/datasets)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
suite="${1:-../shared/datasets}"
rev="${CHAIN_REV:-00d7945}"  # the code every session of this build runs
s=scratch
db="$s/kb-v2.sqlite"
checkpoint=knowledge_base/seed/build/kb-v2-checkpoint.json.gz
mkdir -p "$s"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONSAFEPATH=1  # `python -m` from the repo root must import the frozen worktree, not this checkout
log() { echo "$(date -u '+%F %T') $*" >> "$s/chain.log"; }
done_step() { [ -f "$s/done-$1" ] && log "skipped (done): $1"; }
hold() {  # `touch scratch/hold` keeps the next step from starting (the cores free for a full test run)
    [ -f "$s/hold" ] && log "held before: $*"
    while [ -f "$s/hold" ]; do sleep 20; done
}
export_checkpoint() {  # written aside, then renamed (a commit never takes a half-written file); unless only its
    nice -n 10 "$ml" kb export "$s/checkpoint.json.gz" --db "$db" > /dev/null 2>&1 || return  # date changed
    if "$s/venv/bin/python" -c 'import gzip, json, sys
a, b = ({k: v for k, v in json.load(gzip.open(p)).items() if k != "created"} for p in sys.argv[1:])
sys.exit(a != b)' "$s/checkpoint.json.gz" "$checkpoint" 2> /dev/null; then
        rm "$s/checkpoint.json.gz"
    else
        mv "$s/checkpoint.json.gz" "$checkpoint"
    fi
}

[ -d "$s/wt" ] || { git worktree prune && git worktree add --detach "$s/wt" "$rev"; } || exit 1
if [ ! -x "$s/venv/bin/metalearn" ]; then
    python -m venv --system-site-packages "$s/venv"
    (cd / && "$OLDPWD/$s/venv/bin/pip" install -q --no-deps -e "$OLDPWD/$s/wt")
fi
ml="$s/venv/bin/metalearn"
[ -f "$db" ] || "$ml" kb import "$checkpoint" --db "$db"

log "1. cross-evaluation"
( while sleep 1200; do export_checkpoint; done ) &
exporter=$!
"$ml" kb seed --manifest "$suite" --trials 60 --folds 3 --max-rows 2000 --trial-time-limit 60 --seed 0 \
    --cross-evaluate 1 --pool-size 200 --jobs 2 --db "$db" >> "$s/seed-v2.log" 2>&1
status=$?
pkill -P "$exporter"; kill "$exporter"  # its running export first: it must not rename an older file last
export_checkpoint
log "cross-evaluation exit $status"
[ "$status" -eq 0 ] || exit "$status"
if [ ! -f "$s/merged.done" ]; then  # the shipped seed: the v1 snapshot (e8f2de5) and this build merged
    git show e8f2de5:knowledge_base/seed/seed-kb.json.gz > "$s/seed-kb-v1.json.gz"
    rm -f "$s"/merged.sqlite*
    "$ml" kb import "$s/seed-kb-v1.json.gz" --db "$s/merged.sqlite" && "$ml" kb import "$checkpoint" --db "$s/merged.sqlite" \
        && "$ml" kb export knowledge_base/seed/seed-kb.json.gz --db "$s/merged.sqlite" && touch "$s/merged.done"
    log "shipped seed re-merged: $(ls -l knowledge_base/seed/seed-kb.json.gz)"
fi

[ -x .venv-peers/bin/python ] || bash benchmarks/peers/setup.sh .venv-peers >> "$s/chain.log" 2>&1
equal_time() {
    "$s/venv/bin/python" -m metalearn.benchmark.equal_time --suite "$suite" --db "$db" --jobs 2 --cores 1 \
        --pin-cpus --peers-python .venv-peers/bin/python --output benchmarks/results/equal-time "$@" \
        >> "$s/bench-cls.log" 2>&1
}
equal_time_60() {
    done_step "et60-$1" && return
    hold "equal time 60 s, --seeds $1"
    log "2. equal time 60 s, --seeds $1"
    equal_time --budgets 60 --seeds "$1" \
        --systems metalearn,metalearn-cold,flaml,hgb,autogluon,autogluon-balanced || exit 1
    touch "$s/done-et60-$1"
}
equal_time_60 1  # every target has a first figure before the second seed: 60 s seed 0, 180 s, trial study
if ! done_step et180; then
    hold "equal time 180 s"
    log "3. equal time 180 s"
    equal_time --budgets 180 --seeds 1 --systems metalearn,autogluon-best \
        --datasets benchmarks/selections/equal-time-180.json || exit 1
    touch "$s/done-et180"
fi
if ! done_step trials; then
    hold "trial study"
    log "4. trial study"
    "$ml" benchmark --suite "$suite" --db "$db" --datasets benchmarks/selections/equal-time-180.json \
        --strategies warm,cold,random,flaml,flaml-zeroshot --seeds 2 --jobs 2 --kb-fractions 1 --shuffle \
        --output benchmarks/results/warmstart-v2 >> "$s/trials-v2.log" 2>&1
    status=$?
    log "trial study exit $status"
    [ "$status" -eq 0 ] && touch "$s/done-trials"
fi
equal_time_60 2
log "done"
