#!/usr/bin/env bash
# Every benchmark of issue 5, one after the other (never in parallel: the machine is shared), all building the
# catalog entries from one pde2gen commit, then the README section:
#     bash bench/run_all.sh small        (tiny: a ~20-minute smoke run of everything)
set -u
budget=${1:-tiny}
cd "$(dirname "$0")/.."
export PDE2GEN_BENCH_COMMIT=${PDE2GEN_BENCH_COMMIT:-$(git rev-parse HEAD)}
echo "budget $budget, modules built from commit $PDE2GEN_BENCH_COMMIT" >&2
[ -f bench/digits_classifier.pt ] || python bench/digits_classifier.py
for script in ${SCRIPTS:-dispersion verdicts exact kac paths quality robustness cost}; do
    python bench/$script.py --budget "$budget" || echo "bench/$script.py --budget $budget FAILED (exit $?)" >&2
done
python bench/report.py --budget "$budget"
