#!/bin/sh
# step NAME SCRIPT [ARG...] runs one of ec2-executor's boot steps as
# `sh -c SCRIPT NAME ARG...`. A step that fails adds its name, exit code and last
# lines to the failure report, which the driver reads over SSH while it waits for
# the worker, so that the job fails at once with the worker's own words.
report=${EC2X_FAILED:-/var/lib/ec2-executor-worker/failed}
name=$1 script=$2
shift 2
out=$(mktemp) || exit 1
sh -c "$script" "$name" "$@" >"$out" 2>&1
rc=$?
cat "$out"
if [ "$rc" -ne 0 ]; then
  mkdir -p "$(dirname "$report")"
  { echo "$name failed (exit code $rc):"; tail -n 15 "$out"; } >>"$report"
fi
rm -f "$out"
exit "$rc"
