#!/usr/bin/env bash
# Runs the Modbus driver's benchmarks: requests per scan, points/s and time
# per request for a three-phase meter map (21 float32 points in 4 runs),
# planned and one request per point, against the in-process server
# (github.com/simonvetter/modbus) and Debian's pymodbus over Modbus TCP and
# RTU over TCP, three times each. Appends the output and the exact command to
# bench/modbus/RESULTS.md.
#
# Usage: bench/modbus/run.sh [BENCHTIME]   (default 3s, as go test -benchtime)
set -euo pipefail
cd "$(dirname "$0")/../.."

benchtime=${1:-3s}
cmd=(go test -run '^$' -bench '^BenchmarkScan$' -benchtime "$benchtime" -count 3 ./adapters/modbus/)
echo "== ${cmd[*]}"
out=$("${cmd[@]}")
[[ -f bench/modbus/RESULTS.md ]] || printf '# Modbus driver benchmarks\n' >bench/modbus/RESULTS.md
{
	echo
	echo "## Requests per scan and points/s, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Command: \`${cmd[*]}\`"
	echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r), $(go version | cut -d' ' -f3), pymodbus $(/usr/bin/python3 -c 'import pymodbus; print(pymodbus.__version__)')"
	echo
	echo "A scan reads the 21 float32 points of an Eastron SDM630 map (42 registers in 4 runs) once."
	echo "\`planned\` is the driver's request planner; \`per-point\` forces one request per point (max_registers_per_read: 2)."
	echo "The in-process server runs in the benchmark's own process; pymodbus is a separate Python process on loopback."
	echo
	echo '```'
	grep -E '^(Benchmark|cpu:)' <<<"$out"
	echo '```'
} | tee -a bench/modbus/RESULTS.md
