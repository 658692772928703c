#!/bin/sh
# Issue 21's Montezuma first-room protocol: robustify 3 training seeds (and seed 0 with the
# reference's discount; mz-bytes-s0: seed 0 seeing RAM bytes too; mza-s0: seed 0 with sticky
# repeats of whole steps, the rule before they were drawn per frame; mz-e5-s0: seed 0 with the
# reference's entropy bonus, 1e-5, phase2_atari.sh's --ent_coef; mz-sw-s0: seed 0 with
# self-imitation where the reference looks, --sil-sample window; mz-swe5-s0: both) in the
# background; run again to continue each from its checkpoint. mz-e5-sN are the protocol's
# seeds since 2026-12-02 10:35 (the reference's entropy bonus moved the start point back).
#   sh bench/phase2_montezuma.sh [ROOT] [RUNS...]   (ROOT default /work/runs/phase2)
# ROOT/montezuma is the explored demonstration run; each training runs in a copy of it,
# ROOT/NAME, appends its progress lines to ROOT/NAME.log and its PID to ROOT/NAME.pid.
# PRIO is the command's prefix ("nice -n 10" by default; "chrt -i 0" to use idle CPU only).
ROOT=${1:-/work/runs/phase2}
[ $# -gt 0 ] && shift
RUNS=${*:-mz-s0 mz-s1 mz-s2 mz-g999-s0}
PRIO=${PRIO:-nice -n 10}
TREE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$TREE/.venv/bin/python}
GE="--advance-rate 0.1 --entropy 0.05 --start-window 40 --sil 0.1 --entropy-boost 100"
for name in $RUNS; do
    case $name in
        mz-s0) seed=0 extra="" ;;
        mz-s1) seed=1 extra="" ;;
        mz-s2) seed=2 extra="" ;;
        mz-g999-s0) seed=0 extra="--gamma 0.999" ;;
        mz-bytes-s0) seed=0 extra="--ram bits+bytes" ;;
        mza-s0) seed=0 extra="--sticky-unit action" ;;
        mz-e5-s0) seed=0 extra="--entropy 1e-5" ;;
        mz-sw-s0) seed=0 extra="--sil-sample window" ;;
        mz-swe5-s0) seed=0 extra="--sil-sample window --entropy 1e-5" ;;
        mz-e5-s1) seed=1 extra="--entropy 1e-5" ;;
        mz-e5-s2) seed=2 extra="--entropy 1e-5" ;;
        mz-g999e5-s0) seed=0 extra="--entropy 1e-5 --gamma 0.999" ;;
        *) echo "unknown run $name (mz-s0, mz-s1, mz-s2, mz-g999-s0, mz-bytes-s0, mza-s0," \
                "mz-e5-s0, mz-e5-s1, mz-e5-s2, mz-sw-s0, mz-swe5-s0, mz-g999e5-s0)" >&2
           exit 2 ;;
    esac
    D=$ROOT/$name
    [ -d "$D" ] || cp -r "$ROOT/montezuma" "$D"
    cd "$TREE" && PYTHONPATH="$TREE" nohup $PRIO $PY -m stepstone.cli robustify "$D" \
        --frames 20M --seed "$seed" --threads 1 --baselines none --eval-episodes 20 \
        --sticky 0.25 $GE --checkpoint-every 60 $extra >> "$ROOT/$name.log" 2>&1 &
    echo $! > "$ROOT/$name.pid"
done
