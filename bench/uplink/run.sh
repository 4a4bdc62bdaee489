#!/usr/bin/env bash
# Uplink benchmark of issue 7: a backlog of 1,000,000 readings replayed to a
# real mosquitto over mutual TLS at max_rate 100 / inflight 100, batched
# and one reading per message (BenchmarkReplayBacklog in bridge/). Appends
# a dated section with the command, the machine and the raw output to
# bench/uplink/RESULTS.md.
#
# Usage: bench/uplink/run.sh      Needs: mosquitto (2.0.x), openssl, Go.
# Takes about a minute; the benchmark makes its certificates and starts its
# own mosquitto on a free port of 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in mosquitto openssl go; do
	command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y mosquitto openssl)" >&2; exit 1; }
done

cmd=(go test -run '^$' -bench BenchmarkReplayBacklog -benchtime 1x -timeout 30m ./bridge/)
shown="go test -run '^\$' -bench BenchmarkReplayBacklog -benchtime 1x -timeout 30m ./bridge/"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
"${cmd[@]}" 2>&1 | tee "$out" || status=$?

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
	printf '\n## Replay of a 1,000,000-reading backlog, %s\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)"
	printf 'Command: `%s` (from `bench/uplink/run.sh`)  \n' "$shown"
	# --no-optional-locks: only look, never refresh the index.
	dirty=$(git --no-optional-locks status --porcelain 2>/dev/null | head -1)
	printf 'Commit: %s%s  \n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "${dirty:+ (working tree with changes)}"
	printf 'Machine: %s CPUs, %s, Linux %s, %s, %s, load average %s  \n' "$(nproc)" "${cpu:-unknown CPU}" \
		"$(uname -r)" "$(go version | awk '{print $3}')" "$(mosquitto -h 2>/dev/null | head -1)" \
		"$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'Exit status: %d\n\n```\n' "$status"
	cat "$out"
	printf '```\n'
} >>bench/uplink/RESULTS.md
echo "appended to bench/uplink/RESULTS.md" >&2
exit "$status"
