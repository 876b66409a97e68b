#!/usr/bin/env bash
# The developer `make test` (CI unset: the slow tests skipped) of two checkouts, timed on one machine in one
# run, alternating before/after so that a change of load hits both alike; prints wall seconds, exit status
# and the 1-minute load average before and after each run, then the ratio of the summed times.
# usage: bench/time_make_test.sh BEFORE_DIR AFTER_DIR [ROUNDS]   (each a checkout where `make install` ran)
set -u
dirs=("$1" "$2")
names=(before after)
rounds=${3:-2}
total=(0 0)
for r in $(seq "$rounds"); do
  for i in 0 1; do
    log=$(mktemp "/tmp/make-test-${names[$i]}-$r-XXXX.log")
    load0=$(cut -d' ' -f1 /proc/loadavg)
    start=$SECONDS
    (cd "${dirs[$i]}" && env -u CI make test >"$log" 2>&1)
    rc=$?
    wall=$((SECONDS - start))
    total[i]=$((total[i] + wall))
    echo "${names[$i]} round $r: ${wall} s (exit $rc, load ${load0} -> $(cut -d' ' -f1 /proc/loadavg)): $(tail -n 1 "$log")"
  done
done
echo "after/before: ${total[1]} s / ${total[0]} s = $(python3 -c "print(round(${total[1]} / ${total[0]}, 3))")"
