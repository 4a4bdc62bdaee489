#!/usr/bin/env bash
# Where the gateway's CPU goes at the compare.sh load (10 holding registers
# polled every 100 ms from pymodbus, bridged QoS 1 to mosquitto): the same
# gateway is run in variants that each leave out one part of the path, one
# after the other, and the CPU time and context switches of each are read
# from /proc (every thread's schedstat and status) over the same window.
# Appends the table to bench/modbus/RESULTS.md.
#
# Usage: bench/modbus/floor.sh [--duration SECONDS] [--warmup SECONDS]
#
# Variants:
#   minimal       not the gateway: bench/modbus/minimal, a ticker and one
#                 Modbus request per poll, nothing decoded or published (the
#                 Go runtime's own cost at this load)
#   no-bridge     poll and publish to the embedded broker; no uplink, no buffer
#   bridge        as compare.sh: 10 messages per poll through the buffer
#                 (sync: batch) to mosquitto
#   sync-off      bridge, with the buffer never fsynced (sync: off)
#   one-message   bridge, with the 10 registers mapped as one point (a string
#                 of length 10): one message per poll, like Node-RED's array
#
# Needs: go, mosquitto, mosquitto-clients, python3-pymodbus. Nothing binds
# outside 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=30 warmup=5
while (($#)); do
	case $1 in
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	-h | --help) sed -n '2,23p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

for tool in go mosquitto mosquitto_sub python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install golang mosquitto mosquitto-clients python3-pymodbus)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import pymodbus.server.async_io' 2>/dev/null || { echo "missing python3-pymodbus" >&2; exit 1; }

source bench/lib.sh
source bench/modbus/common.sh
bench_init floor

start_pymodbus '{"units": {"2": {"hr": [1,2,3,4,5,6,7,8,9,10]}}}'
start_mosquitto

CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/gateway" ./cmd/gateway
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/minimal" ./bench/modbus/minimal

# cpu_ns PID: CPU time of every thread, in nanoseconds.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s}'; }
# switches PID: voluntary and involuntary context switches of every thread.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'; }

rows=()
for variant in minimal no-bridge bridge sync-off one-message; do
	if [[ $variant == minimal ]]; then
		"$work/minimal" -addr "127.0.0.1:$mbport" -unit 2 -count 10 -interval "${INTERVAL_MS:-100}ms" >"$work/$variant.log" 2>&1 &
	else
		gateway_config "$variant" >"$work/$variant.yaml"
		"$work/gateway" run --config "$work/$variant.yaml" >"$work/$variant.log" 2>&1 &
	fi
	gw=$!
	pids+=("$gw")
	sleep "$warmup"
	kill -0 "$gw" 2>/dev/null || { cat "$work/$variant.log" >&2; exit 1; }
	mosquitto_sub -h 127.0.0.1 -p "$mqport" -t 'bench-gw/plc/#' >"$work/$variant.mqtt" 2>/dev/null &
	sub=$!
	c0=$(cpu_ns "$gw") s0=$(switches "$gw") t0=$(date +%s.%N)
	echo "== $variant: measuring for ${duration}s"
	sleep "$duration"
	c1=$(cpu_ns "$gw") s1=$(switches "$gw") t1=$(date +%s.%N)
	kill "$sub" "$gw"
	wait "$gw" 2>/dev/null || true
	wait "$sub" 2>/dev/null || true
	msgs=$(wc -l <"$work/$variant.mqtt")
	rows+=("$(awk -v v="$variant" -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v m="$msgs" \
		'BEGIN {d = t1 - t0; printf "| %s | %.2f | %.0f | %.1f | %d |", v, (c1 - c0) / 1e9 / d * 100, (s1 - s0) / d, (s1 - s0) / d / 10, m}')")
done

{
	echo
	echo "## CPU floor, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Command: \`bench/modbus/floor.sh --duration $duration --warmup $warmup\`"
	echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r); $(go version | cut -d' ' -f3)"
	echo "The gateway polls 10 holding registers every 100 ms from pymodbus; CPU and context switches of all its threads from /proc over ${duration} s after a ${warmup} s warm-up."
	echo
	echo "| variant | CPU (% of one core) | context switches/s | per poll | messages at mosquitto |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >"$work/results.md"
[[ -f bench/modbus/RESULTS.md ]] || printf '# Modbus driver benchmarks\n' >bench/modbus/RESULTS.md
tee -a bench/modbus/RESULTS.md <"$work/results.md"
