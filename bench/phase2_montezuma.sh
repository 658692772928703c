#!/bin/sh
# Issue 21's Montezuma first-room protocol: robustify 3 training seeds in the background, each
# continuing from its checkpoint; the same command continues them after a stop.
#   sh bench/phase2_montezuma.sh [ROOT] [RUNS...]        (ROOT default /work/runs/phase2)
#   sh bench/phase2_montezuma.sh --save [ROOT] [RUNS...]  (keep the checkpoints in the tree)
#   sh bench/phase2_montezuma.sh --report [ROOT] [RUNS...]  (the window's progress, a table)
# The protocol's seeds are mz-e5-s0, mz-e5-s1 and mz-e5-s2 (the default RUNS): Go-Explore's
# Phase 2 settings with its entropy bonus, 1e-5 (phase2_atari.sh's --ent_coef). The others are
# the side-by-side runs of bench/README.md: mz-s0..2 (--entropy 0.05), mz-g999-s0 and
# mz-g999e5-s0 (--gamma 0.999), mz-e5lag-s0 (--lag 50, branched from mz-e5-s0 with
# bench/branch.py), mz-h256-s0..2 (--hidden 256,256), mz-h256sc-s0..2 (the same with the
# reference's discount and reward scale: --gamma 0.999 --rewards scaled), mz-h256scb-s0..2
# (mz-h256-sN branched to those with bench/branch.py), mz-h256so-s0..2 (mz-h256-sN branched to
# --ram bits+score: bench/branch.py SRC DST --new-inputs 1 'ram="bits+score"'), mz-h256scl-s0..2
# (mz-h256scb-sN branched to --life-loss continue, the reference's --no_game_over_on_life_loss),
# mz-bytes-s0 (--ram bits+bytes), mza-s0
# (sticky repeats of whole steps), mz-sw-s0 and mz-swe5-s0 (--sil-sample window).
# ROOT/montezuma is the demonstration run, explored here first if missing (Phase 1 is
# deterministic: the same 471 actions every time). Each training runs in a copy of it,
# ROOT/NAME, appends its progress lines to ROOT/NAME.log and its PID to ROOT/NAME.pid. A
# training kept with --save (bench/state/phase2/NAME/, its checkpoint) is continued from there
# when ROOT/NAME does not exist yet: the protocol's 20M steps span more than one session.
# PRIO is the command's prefix ("nice -n 10" by default; "chrt -i 0" to use idle CPU only).
SAVE=0
REPORT=0
[ "$1" = "--save" ] && SAVE=1 && shift
[ "$1" = "--report" ] && REPORT=1 && shift
ROOT=${1:-/work/runs/phase2}
[ $# -gt 0 ] && shift
RUNS=${*:-mz-e5-s0 mz-e5-s1 mz-e5-s2}
PRIO=${PRIO:-nice -n 10}
TREE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$TREE/.venv/bin/python}
STATE=$TREE/bench/state/phase2
if [ $SAVE = 1 ]; then
    for name in $RUNS; do
        mkdir -p "$STATE/$name"
        cp "$ROOT/$name/robustify/checkpoint-backward.pt" "$STATE/$name/" && echo "kept $name"
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
        mz-s0) seed=0 extra="" ;;
        mz-s1) seed=1 extra="" ;;
        mz-s2) seed=2 extra="" ;;
        mz-g999-s0) seed=0 extra="--gamma 0.999" ;;
        mz-bytes-s0) seed=0 extra="--ram bits+bytes" ;;
        mza-s0) seed=0 extra="--sticky-unit action" ;;
        mz-e5-s0) seed=0 extra="--entropy 1e-5" ;;
        mz-e5-s1) seed=1 extra="--entropy 1e-5" ;;
        mz-e5-s2) seed=2 extra="--entropy 1e-5" ;;
        mz-g999e5-s0) seed=0 extra="--entropy 1e-5 --gamma 0.999" ;;
        mz-e5lag-s0) seed=0 extra="--entropy 1e-5 --lag 50" ;;
        mz-h256-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256" ;;
        mz-h256-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256" ;;
        mz-h256-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256" ;;
        mz-h256sc-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled" ;;
        mz-h256sc-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled" ;;
        mz-h256sc-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled" ;;
        mz-h256scb-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled" ;;
        mz-h256scb-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled" ;;
        mz-h256scb-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled" ;;
        mz-h256so-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --ram bits+score" ;;
        mz-h256so-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --ram bits+score" ;;
        mz-h256so-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --ram bits+score" ;;
        mz-h256scl-s0) seed=0 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue" ;;
        mz-h256scl-s1) seed=1 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue" ;;
        mz-h256scl-s2) seed=2 extra="--entropy 1e-5 --hidden 256,256 --gamma 0.999 --rewards scaled --life-loss continue" ;;
        mz-sw-s0) seed=0 extra="--sil-sample window" ;;
        mz-swe5-s0) seed=0 extra="--sil-sample window --entropy 1e-5" ;;
        *) echo "unknown run $name (see the list at the top of $0)" >&2; exit 2 ;;
    esac
    D=$ROOT/$name
    if [ ! -d "$D" ]; then
        cp -r "$ROOT/montezuma" "$D"
        if [ -f "$STATE/$name/checkpoint-backward.pt" ]; then
            mkdir -p "$D/robustify" && cp "$STATE/$name/checkpoint-backward.pt" "$D/robustify/"
        fi
    fi
    cd "$TREE" && PYTHONPATH="$TREE" nohup $PRIO $PY -m stepstone.cli robustify "$D" \
        --frames 20M --seed "$seed" --threads 1 --baselines none --eval-episodes 20 \
        --sticky 0.25 $GE --checkpoint-every 60 $extra >> "$ROOT/$name.log" 2>&1 &
    echo $! > "$ROOT/$name.pid"
done
