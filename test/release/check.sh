#!/bin/bash
# Checks `make release`: two builds of one commit give the same bytes, and the .deb
# installs on this machine, runs, and leaves nothing behind once purged.
set -euo pipefail
cd "$(dirname "$0")/../.."
first=$(mktemp -d -p "$PWD")
trap 'rm -rf "$first"' EXIT
make -s release DIST="$first/dist" >/dev/null
make -s release >/dev/null
if ! diff -u "$first/dist/SHA256SUMS" dist/SHA256SUMS; then
  echo "FAIL: two release builds of one commit differ"; exit 1
fi
for f in ec2-executor-linux-amd64 ec2-executor-linux-arm64; do
  file "dist/$f" | grep -q "statically linked" || { echo "FAIL: dist/$f is not static"; exit 1; }
done
ls dist/*.rpm >/dev/null
# Every unit's exposure, as systemd-analyze rates it, stays at 4.0 or lower.
for u in dist/units/*.service; do
  systemd-analyze security --offline=true --threshold=40 "$u" >/dev/null || {
    echo "FAIL: $u is rated above 4.0:"; systemd-analyze security --offline=true "$u" | tail -1; exit 1; }
done
if dpkg -s ec2-executor >/dev/null 2>&1; then echo "FAIL: ec2-executor is already installed here"; exit 1; fi
deb=$(ls dist/ec2-executor_*_amd64.deb)
dpkg -i "$deb" >/dev/null
files=$(dpkg -L ec2-executor)
/usr/bin/ec2-executor version | grep -q '^ec2-executor .* (commit .*, go' || { echo "FAIL: version"; exit 1; }
[ "$(/usr/bin/ec2-executor version)" = "$(/usr/bin/ec2-executor --version)" ] || { echo "FAIL: version and --version differ"; exit 1; }
[ "$(stat -c %a /var/lib/ec2-executor)" = 700 ] || { echo "FAIL: /var/lib/ec2-executor is not 0700"; exit 1; }
[ -f /lib/systemd/system/ec2-executor-pool@.service ] || { echo "FAIL: no template pool unit"; exit 1; }
# The pool unit's own command line, as its user (the unit's User=, root when unset),
# loads the packaged settings: the package can start the pool as shipped.
unit=/lib/systemd/system/ec2-executor-pool.service
user=$(sed -n 's/^User=//p' "$unit"); user=${user:-root}
cmdline=$(sed -n 's/^ExecStart=//p' "$unit")
runuser -u "$user" -- ${cmdline% pool} validate >/dev/null || { echo "FAIL: the pool unit's command line cannot load its settings as $user"; exit 1; }
/usr/bin/ec2-executor validate --config /etc/ec2-executor/config.toml >/dev/null
dpkg --purge ec2-executor >/dev/null
left=""
for f in $files; do
  case "$f" in /|/.|/usr|/usr/bin|/etc|/lib|/lib/systemd|/lib/systemd/system|/var|/var/lib) continue ;; esac
  [ -e "$f" ] && left="$left $f"
done
[ -z "$left" ] || { echo "FAIL: left behind after purge:$left"; exit 1; }
echo "release-check: reproducible, installs, runs and purges cleanly ($(basename "$deb"))"
