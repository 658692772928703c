#!/bin/sh
# Issue 21's Montezuma first-room protocol: robustify 3 training seeds in the background, each
# continuing from its checkpoint; the same command continues them after a stop.
#   sh bench/phase2_montezuma.sh [ROOT] [RUNS...]        (ROOT default /work/runs/phase2)
#   sh bench/phase2_montezuma.sh --save [ROOT] [RUNS...]  (keep the checkpoints in the tree)
#   sh bench/phase2_montezuma.sh --report [ROOT] [RUNS...]  (the window's progress, a table)
# The protocol's seeds are mz-h256scl-s0, -s1 and -s2 (the default RUNS): Go-Explore's Phase 2
# settings with its entropy bonus (1e-5), discount, reward scale and lives rule, on a 256-256
# network; kept ones continue from the branches they were made as (bench/README.md). Before
# them the protocol's seeds were mz-e5-s0..2 (the entropy bonus only). The others are
# the side-by-side runs of bench/README.md: mz-s0..2 (--entropy 0.05), mz-g999-s0 and
# mz-g999e5-s0 (--gamma 0.999), mz-e5lag-s0 (--lag 50, branched from mz-e5-s0 with
# bench/branch.py), mz-h256-s0..2 (--hidden 256,256), mz-h256sc-s0..2 (the same with the
# reference's discount and reward scale: --gamma 0.999 --rewards scaled), mz-h256scb-s0..2
# (mz-h256-sN branched to those with bench/branch.py), mz-h256so-s0..2 (mz-h256-sN branched to
# --ram bits+score: bench/branch.py SRC DST --new-inputs 1 'ram="bits+score"'), mz-h256scl-s0..2
# (mz-h256scb-sN branched to --life-loss continue, the reference's --no_game_over_on_life_loss),
# mz-ref-s0..2 (from scratch with those settings and the reference's --lag 50), mz-reffs-s0..2
# (the same with --from-reset 0.5, the reference's --test_from_start), mz-reffsb-s0 (mz-ref-s0
# branched to --from-reset 0.5 at 8.1M steps), mz-refan-s0..2 (mz-ref-sN's settings with
# --anneal linear from scratch: PPO's step size and clipping shrink to 0 at 20M steps),
# mz-refanfsb-s0 (mz-refan-s0 branched to --from-reset 0.5 at 8.1M steps),
# mz-bytes-s0 (--ram bits+bytes), mza-s0
# (sticky repeats of whole steps), mz-sw-s0 and mz-swe5-s0 (--sil-sample window).
# Every run but mz-h256scl-s0..2 was begun when a lost life ended a training episode (the
# default then); their lines say --life-loss end so that they run as they did.
# ROOT/montezuma is the demonstration run, explored here first if missing (Phase 1 is
# deterministic: the same 471 actions every time). Each training runs in a copy of it,
# ROOT/NAME, appends its progress lines to ROOT/NAME.log and its PID to ROOT/NAME.pid. A
# training kept with --save (bench/state/phase2/NAME/, its checkpoint) is continued from there
# when ROOT/NAME does not exist yet: the protocol's 20M steps span more than one session.
# Every training evaluates its policy from reset each 1M steps and keeps the best
# (--eval-every: ROOT/NAME/robustify/evaluations.json, policy-best.pt; the training is the same
# without it). `kill $(cat ROOT/NAME.pid)` stops one with its checkpoint written. PRIO is the command's prefix ("nice -n 10" by default; "chrt -i 0" to use idle CPU only).
SAVE=0
REPORT=0
[ "$1" = "--save" ] && SAVE=1 && shift
[ "$1" = "--report" ] && REPORT=1 && shift
ROOT=${1:-/work/runs/phase2}
[ $# -gt 0 ] && shift
RUNS=${*:-mz-h256scl-s0 mz-h256scl-s1 mz-h256scl-s2}
PRIO=${PRIO:-nice -n 10}
TREE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$TREE/.venv/bin/python}
STATE=$TREE/bench/state/phase2
if [ $SAVE = 1 ]; then
    for name in $RUNS; do
        mkdir -p "$STATE/$name"
        cp "$ROOT/$name/robustify/checkpoint-backward.pt" "$STATE/$name/" && echo "kept $name"
        for f in evaluations.json policy-best.pt policy-best.json; do  # --eval-every's record
            [ -f "$ROOT/$name/robustify/$f" ] && cp "$ROOT/$name/robustify/$f" "$STATE/$name/"
        done
    done
    exit 0
fi
if [ $REPORT = 1 ]; then
    logs=""
    for name in $RUNS; do logs="$logs $ROOT/$name.log"; done
    exec $PY "$TREE/bench/phase2_log.py" $logs
fi
GE="--advance-rate 0.1 --entropy 0.05 --start-window 40 --sil 0.1 --entropy-boost 100"
if [ ! -d "$ROOT/montezuma" ]; then
    mkdir -p "$ROOT"
    (cd "$TREE" && PYTHONPATH="$TREE" $PY -m stepstone.cli explore montezuma --cells ram \
        --selector domain-released --reset-on-update --cell-param bin_x=4 --frames 2M \
        --goal "score>=400" --stop-on-success --workers 1 --no-progress \
        --run-dir "$ROOT/montezuma") || exit 1
fi
for name in $RUNS; do
    case $name in
        mz-s0) seed=0 extra="--life-loss end" ;;
        mz-s1) seed=1 extra="--life-loss end" ;;
        mz-s2) seed=2 extra="--life-loss end" ;;
        mz-g999-s0) seed=0 extra="--gamma 0.999 --life-loss end" ;;
        mz-bytes-s0) seed=0 extra="--ram bits+bytes --life-loss end" ;;
        mza-s0) seed=0 extra="--sticky-unit action --life-loss end" ;;
        mz-e5-s0) seed=0 extra="--entropy 1e-5 --life-loss end" ;;
        mz-e5-s1) seed=1 extra="--entropy 1e-5 --life-loss end" ;;
        mz-e5-s2) seed=2 extra="--entropy 1e-5 --life-loss end" ;;
        mz-g999e5-s0) seed=0 extra="--entropy 1e-5 --gamma 0.999 --life-loss end" ;;
        mz-e5lag-s0) seed=0 extra="--entropy 1e-5 --lag 50 --life-loss end" ;;
        mz-h256-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --life-loss end" ;;
        mz-h256-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --life-loss end" ;;
        mz-h256-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --life-loss end" ;;
        mz-h256sc-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss end" ;;
        mz-h256sc-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss end" ;;
        mz-h256sc-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss end" ;;
        mz-h256scb-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss end" ;;
        mz-h256scb-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss end" ;;
        mz-h256scb-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss end" ;;
        mz-h256so-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --ram bits+score --life-loss end" ;;
        mz-h256so-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --ram bits+score --life-loss end" ;;
        mz-h256so-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --ram bits+score --life-loss end" ;;
        mz-h256scl-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue" ;;
        mz-h256scl-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue" ;;
        mz-h256scl-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue" ;;
        mz-ref-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50" ;;
        mz-ref-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50" ;;
        mz-ref-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50" ;;
        mz-reffs-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --from-reset 0.5" ;;
        mz-reffs-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --from-reset 0.5" ;;
        mz-reffs-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --from-reset 0.5" ;;
        mz-refan-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --anneal linear" ;;
        mz-refan-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --anneal linear" ;;
        mz-refan-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --anneal linear" ;;
        mz-refanfsb-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --anneal linear --from-reset 0.5" ;;
        mz-reffsb-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue --lag 50 --from-reset 0.5" ;;
        mz-sw-s0) seed=0 extra="--sil-sample window --life-loss end" ;;
        mz-swe5-s0) seed=0 extra="--sil-sample window --entropy 1e-5 --life-loss end" ;;
        *) echo "unknown run $name (see the list at the top of $0)" >&2; exit 2 ;;
    esac
    D=$ROOT/$name
    if [ ! -d "$D" ]; then
        cp -r "$ROOT/montezuma" "$D"
        if [ -f "$STATE/$name/checkpoint-backward.pt" ]; then
            mkdir -p "$D/robustify" && cp "$STATE/$name"/* "$D/robustify/"
        fi
    fi
    cd "$TREE" && PYTHONPATH="$TREE" nohup $PRIO $PY -m stepstone.cli robustify "$D" \
        --frames 20M --seed "$seed" --threads 1 --baselines none --eval-episodes 20 \
        --sticky 0.25 $GE --checkpoint-every 60 --eval-every 1M $extra >> "$ROOT/$name.log" 2>&1 &
    echo $! > "$ROOT/$name.pid"
done
