#!/usr/bin/env bash
# Foundation benchmarks (docs/benchmarks.md): stripped arm64 binary size,
# idle RSS and CPU of the demo, and readings/s from the simulation driver
# through the embedded broker to one subscriber, side by side with the same
# subscriber on mosquitto fed by a publishing client.
# Usage: bench/foundation.sh [seconds]   (needs mosquitto; run as is)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
source bench/lib.sh
bench_init foundation
trap 'kill $(jobs -p) 2>/dev/null || true; bench_cleanup' EXIT
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
rss_kib() { awk '/^VmRSS/{print $2}' /proc/$1/status; }

echo "== binary size (CGO_ENABLED=0 linux/arm64, -trimpath -ldflags '-s -w')"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags '-s -w' -o "$work/gateway-arm64" ./cmd/gateway
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -ldflags '-s -w' -o "$work/gateway-armhf" ./cmd/gateway
awk -v a="$(stat -c %s "$work/gateway-arm64")" -v b="$(stat -c %s "$work/gateway-armhf")" 'BEGIN{printf "arm64: %.1f MiB, armhf: %.1f MiB\n", a/1048576, b/1048576}'

go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/mqttload" ./bench/mqttload
hz=$(getconf CLK_TCK)

echo "== demo idle: RSS and CPU over ${secs}s after 5s warm-up"
port=$(free_port)
sed -e "s|data_dir: ./data|data_dir: $work/demo-data|" -e "s|127.0.0.1:1883|127.0.0.1:$port|" -e "s|127.0.0.1:9100|127.0.0.1:$(free_port)|" configs/demo.yaml >"$work/demo.yaml"
"$work/gateway" run --config "$work/demo.yaml" 2>"$work/demo.log" &
pid=$!
sleep 5
t0=$(ticks $pid)
sleep "$secs"
t1=$(ticks $pid)
echo "demo: RSS $(( $(rss_kib $pid) / 1024 )) MiB ($(rss_kib $pid) KiB), CPU $(awk -v d="$((t1 - t0))" -v hz="$hz" -v s="$secs" 'BEGIN{printf "%.2f", 100*d/hz/s}') % of one core"
kill -TERM $pid; wait $pid

sim_config() { # devices points-per-device
	echo "gateway: {id: bench, data_dir: $work/sim-data}"
	echo "broker: {listeners: [{name: local, type: tcp, address: 127.0.0.1:$port}]}"
	echo "publish: {qos: 0, retain: false}"
	echo "devices:"
	for d in $(seq 1 "$1"); do
		echo "  - name: sim$d"
		echo "    driver: simulation"
		echo "    poll_interval: 1ms"
		echo "    points:"
		for i in $(seq 1 "$2"); do echo "      - {name: p$i, waveform: ramp, period: 1s}"; done
	done
}

echo "== readings/s: simulation, one device (one bus goroutine), 400 points every 1ms -> embedded broker -> one QoS0 subscriber"
port=$(free_port)
sim_config 1 400 >"$work/sim.yaml"
"$work/gateway" run --config "$work/sim.yaml" 2>"$work/sim.log" &
pid=$!
"$work/mqttload" sub -raw -broker "tcp://127.0.0.1:$port" -topic "bench/#" -duration "${secs}s" | sed 's/^/fieldbridge, 1 device: /'
kill -TERM $pid; wait $pid

echo "== readings/s: simulation, two devices (two bus goroutines), 200 points each every 1ms"
port=$(free_port)
sim_config 2 200 >"$work/sim.yaml"
"$work/gateway" run --config "$work/sim.yaml" 2>"$work/sim.log" &
pid=$!
"$work/mqttload" sub -raw -broker "tcp://127.0.0.1:$port" -topic "bench/#" -duration "${secs}s" | sed 's/^/fieldbridge, 2 devices: /'
echo "fieldbridge: RSS $(( $(rss_kib $pid) / 1024 )) MiB under load"
kill -TERM $pid; wait $pid

echo "== same subscriber on mosquitto, fed by one raw QoS0 publisher (100-byte payloads, 100 topics)"
port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mpid=$!
until "$work/mqttload" sub -broker "tcp://127.0.0.1:$port" -duration 0s -warmup 0s >/dev/null 2>&1; do sleep 0.1; done
"$work/mqttload" pub -raw -broker "tcp://127.0.0.1:$port" -topic bench -duration "$((secs + 3))s" &
pubpid=$!
"$work/mqttload" sub -raw -broker "tcp://127.0.0.1:$port" -topic "bench/#" -duration "${secs}s" | sed 's/^/mosquitto: /'
wait "$pubpid" 2>/dev/null || true
kill $mpid
