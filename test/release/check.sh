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
if dpkg -s ec2-executor >/dev/null 2>&1; then echo "FAIL: ec2-executor is already installed here"; exit 1; fi
deb=$(ls dist/ec2-executor_*_amd64.deb)
dpkg -i "$deb" >/dev/null
files=$(dpkg -L ec2-executor)
/usr/bin/ec2-executor version | grep -q '^ec2-executor .* (commit .*, go' || { echo "FAIL: version"; exit 1; }
[ "$(/usr/bin/ec2-executor version)" = "$(/usr/bin/ec2-executor --version)" ] || { echo "FAIL: version and --version differ"; exit 1; }
[ "$(stat -c %a /var/lib/ec2-executor)" = 700 ] || { echo "FAIL: /var/lib/ec2-executor is not 0700"; exit 1; }
/usr/bin/ec2-executor validate --config /etc/ec2-executor/config.toml >/dev/null
dpkg --purge ec2-executor >/dev/null
left=""
for f in $files; do
  case "$f" in /|/.|/usr|/usr/bin|/etc|/lib|/lib/systemd|/lib/systemd/system|/var|/var/lib) continue ;; esac
  [ -e "$f" ] && left="$left $f"
done
[ -z "$left" ] || { echo "FAIL: left behind after purge:$left"; exit 1; }
echo "release-check: reproducible, installs, runs and purges cleanly ($(basename "$deb"))"
