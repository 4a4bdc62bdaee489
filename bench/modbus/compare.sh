#!/usr/bin/env bash
# Side by side: the gateway and Node-RED poll the same 10 holding registers
# every 100 ms from the same pymodbus server and publish to the same
# mosquitto. Measures the RSS and CPU of each process and the poll jitter
# as the Modbus server sees it (the arrival times of each client's
# requests), and appends the results to bench/modbus/RESULTS.md.
#
# Usage: bench/modbus/compare.sh [--variant V | --harness [--discard] | --minimal] [--duration SECONDS] [--warmup SECONDS] [--keep]
#
#   --variant   the gateway's configuration (bench/modbus/common.sh): bridge
#               (the default: one message per register, bridged through the
#               buffer to mosquitto), no-bridge, sync-off or one-message
#   --harness   run bench/modbus/harness (the Modbus driver alone, publishing
#               straight to mosquitto with paho) instead of the whole gateway
#   --discard   with --harness: poll but publish nothing, to measure the
#               driver without any MQTT client
#   --minimal   run bench/modbus/minimal (a ticker and one Modbus request
#               per poll, nothing decoded or published): the CPU the Go
#               runtime spends on this load, the floor for any Go gateway
#   --keep      keep the work directory (logs, configs, Node-RED install)
#
# Needs: go, node (>= 18) and npm (node-red 4.1.15 and node-red-contrib-modbus
# 5.23.3 are installed from npm into the work directory), mosquitto and
# mosquitto-clients, python3-pymodbus. Nothing binds outside 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=gateway variant=bridge duration=60 warmup=10 keep=0 discard=0
while (($#)); do
	case $1 in
	--harness) mode=harness ;;
	--minimal) mode=minimal ;;
	--variant) variant=$2; shift ;;
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--discard) discard=1 ;;
	--keep) keep=1 ;;
	-h | --help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

NODE_RED=4.1.15
CONTRIB=5.23.3
INTERVAL_MS=100

for tool in go node npm mosquitto mosquitto_sub python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install golang nodejs npm mosquitto mosquitto-clients python3-pymodbus)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import pymodbus.server.async_io' 2>/dev/null || { echo "missing python3-pymodbus" >&2; exit 1; }

source bench/lib.sh
source bench/modbus/common.sh
bench_init compare

echo "== work directory $work"

# 1. The Modbus server: unit 1 answers Node-RED, unit 2 the gateway, with
# the same 10 registers; every answered request is logged with its time.
start_pymodbus '{"units": {"1": {"hr": [1,2,3,4,5,6,7,8,9,10]}, "2": {"hr": [1,2,3,4,5,6,7,8,9,10]}},
 "log": "'"$work"'/requests.log"}'
echo "== pymodbus on 127.0.0.1:$mbport"

# 2. mosquitto, the broker both publish to.
start_mosquitto
echo "== mosquitto on 127.0.0.1:$mqport"

# 3. Node-RED with node-red-contrib-modbus, installed into the work directory.
nr=$work/node-red
mkdir -p "$nr"
echo "== npm install node-red@$NODE_RED node-red-contrib-modbus@$CONTRIB"
(cd "$nr" && npm install --no-audit --no-fund --loglevel=error "node-red@$NODE_RED" "node-red-contrib-modbus@$CONTRIB" >"$work/npm.log" 2>&1) ||
	{ tail -20 "$work/npm.log" >&2; exit 1; }
nrport=$(free_port)
cat >"$nr/settings.js" <<EOF
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: $nrport,
    flowFile: "flows.json",
    credentialSecret: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
};
EOF
cat >"$nr/flows.json" <<EOF
[
  {"id": "bench", "type": "tab", "label": "bench"},
  {"id": "cfg-modbus", "type": "modbus-client", "name": "pymodbus", "clienttype": "tcp",
   "bufferCommands": true, "stateLogEnabled": false, "queueLogEnabled": false, "failureLogEnabled": true,
   "tcpHost": "127.0.0.1", "tcpPort": "$mbport", "tcpType": "DEFAULT",
   "serialPort": "/dev/ttyUSB", "serialType": "RTU-BUFFERD", "serialBaudrate": "9600", "serialDatabits": "8",
   "serialStopbits": "1", "serialParity": "none", "serialConnectionDelay": "100",
   "serialAsciiResponseStartDelimiter": "0x3A", "unit_id": "1", "commandDelay": "1",
   "clientTimeout": "1000", "reconnectOnTimeout": true, "reconnectTimeout": "2000", "parallelUnitIdsAllowed": true,
   "showErrors": false, "showWarnings": true, "showLogs": false},
  {"id": "n-read", "type": "modbus-read", "z": "bench", "name": "registers", "topic": "", "showStatusActivities": false,
   "logIOActivities": false, "showErrors": false, "showWarnings": true, "unitid": "1", "dataType": "HoldingRegister",
   "adr": "0", "quantity": "10", "rate": "$INTERVAL_MS", "rateUnit": "ms", "delayOnStart": false, "startDelayTime": "",
   "server": "cfg-modbus", "useIOFile": false, "ioFile": "", "useIOForPayload": false, "emptyMsgOnFail": false,
   "x": 120, "y": 80, "wires": [["n-publish"], []]},
  {"id": "n-publish", "type": "mqtt out", "z": "bench", "name": "", "topic": "nodered/plc/registers", "qos": "1",
   "retain": "false", "broker": "cfg-broker", "x": 360, "y": 80, "wires": []},
  {"id": "cfg-broker", "type": "mqtt-broker", "name": "mosquitto", "broker": "127.0.0.1", "port": "$mqport",
   "clientid": "nodered-bench", "usetls": false, "protocolVersion": "4", "keepalive": "60", "cleansession": true,
   "birthTopic": "", "closeTopic": "", "willTopic": ""}
]
EOF

# 4. Our side: the gateway, or the driver alone (harness).
gateway_config "$variant" >"$work/gateway.yaml"
if [[ $mode == gateway ]]; then
	# Built as packaging/build.sh builds what users install: without cgo
	# (no libc mapped) and without symbol tables.
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/ours" ./cmd/gateway
	if ! "$work/ours" validate --config "$work/gateway.yaml" >"$work/validate.log" 2>&1; then
		cat "$work/validate.log" >&2
		exit 1
	fi
	ours_cmd=("$work/ours" run --config "$work/gateway.yaml")
	ours_name="fieldbridge gateway"
	if [[ $variant != bridge ]]; then
		ours_name="fieldbridge gateway ($variant)"
		mode="variant $variant"
	fi
elif [[ $mode == minimal ]]; then
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/ours" ./bench/modbus/minimal
	ours_cmd=("$work/ours" -addr "127.0.0.1:$mbport" -unit 2 -count 10 -interval "${INTERVAL_MS}ms")
	ours_name="Go floor (bench/modbus/minimal, publishing nothing)"
else
	go build -o "$work/ours" ./bench/modbus/harness
	ours_cmd=("$work/ours" -config "$work/gateway.yaml" -broker "tcp://127.0.0.1:$mqport")
	ours_name="fieldbridge modbus driver (harness)"
	if ((discard)); then
		ours_cmd+=(-discard)
		ours_name="fieldbridge modbus driver (harness, publishing nothing)"
		mode="harness --discard"
	fi
fi

# 5. Run both, count what reaches mosquitto.
mosquitto_sub -h 127.0.0.1 -p "$mqport" -t 'nodered/#' -t 'bench-gw/#' -F '%U %t' >"$work/mqtt.log" 2>/dev/null &
pids+=($!)
"${ours_cmd[@]}" >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
(cd "$nr" && exec node node_modules/node-red/red.js --settings settings.js --userDir . >"$work/node-red.log" 2>&1) &
nr_pid=$!
pids+=("$nr_pid")

echo "== warming up for ${warmup}s"
sleep "$warmup"
for p in "$ours_pid" "$nr_pid"; do kill -0 "$p" 2>/dev/null || { echo "a process died; see $work/*.log" >&2; keep=1; exit 1; }; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
t0=$(date +%s.%N)
ours_c0=$(cpu_ticks "$ours_pid") nr_c0=$(cpu_ticks "$nr_pid")
echo "== measuring for ${duration}s"
: >"$work/rss.log"
for _ in $(seq "$duration"); do
	echo "$(rss_kib "$ours_pid") $(rss_kib "$nr_pid")" >>"$work/rss.log"
	sleep 1
done
t1=$(date +%s.%N)
ours_c1=$(cpu_ticks "$ours_pid") nr_c1=$(cpu_ticks "$nr_pid")
hz=$(getconf CLK_TCK)

# 6. Statistics, and the results appended to RESULTS.md.
table=$(/usr/bin/python3 - "$work" "$t0" "$t1" "$hz" "$ours_c0" "$ours_c1" "$nr_c0" "$nr_c1" "$INTERVAL_MS" "$ours_name" "Node-RED $NODE_RED + node-red-contrib-modbus $CONTRIB" <<'PY'
import sys
work, t0, t1, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
oc0, oc1, nc0, nc1 = map(int, sys.argv[5:9])
interval = float(sys.argv[9]) / 1000
names = {2: sys.argv[10], 1: sys.argv[11]}
span = t1 - t0

times = {1: [], 2: []}
for line in open(work + "/requests.log"):
    t, unit, fc = line.split()
    t, unit = float(t), int(unit)
    if t0 <= t <= t1 and fc == "3" and unit in times:
        times[unit].append(t)
rss = {2: [], 1: []}
for line in open(work + "/rss.log"):
    parts = line.split()
    if len(parts) == 2:
        rss[2].append(int(parts[0]) / 1024)
        rss[1].append(int(parts[1]) / 1024)
msgs = {1: 0, 2: 0}
for line in open(work + "/mqtt.log"):
    t, topic = line.split(None, 1)
    if t0 <= float(t) <= t1:
        msgs[1 if topic.startswith("nodered/") else 2] += 1
cpu = {2: (oc1 - oc0) / hz / span * 100, 1: (nc1 - nc0) / hz / span * 100}

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")

print("| | RSS max (MiB) | RSS mean (MiB) | CPU (% of one core) | polls | mean interval (ms) | jitter p50 (ms) | jitter p99 (ms) | jitter max (ms) | MQTT messages |")
print("|---|---|---|---|---|---|---|---|---|---|")
stats = {}
for unit in (2, 1):
    ts = times[unit]
    iv = [b - a for a, b in zip(ts, ts[1:])]
    jit = [abs(x - interval) * 1000 for x in iv]
    mean = sum(iv) / len(iv) * 1000 if iv else float("nan")
    stats[unit] = (max(rss[unit]) if rss[unit] else float("nan"), cpu[unit])
    print("| %s | %.1f | %.1f | %.2f | %d | %.2f | %.2f | %.2f | %.2f | %d |" % (
        names[unit], max(rss[unit]) if rss[unit] else float("nan"), sum(rss[unit]) / max(len(rss[unit]), 1),
        cpu[unit], len(ts), mean, pct(jit, 50), pct(jit, 99), max(jit) if jit else float("nan"), msgs[unit]))
print()
print("Ratios, ours / Node-RED: RSS %.2f, CPU %.2f (goal: at most 0.20 each; jitter p99 under 5 ms)." % (
    stats[2][0] / stats[1][0], stats[2][1] / stats[1][1] if stats[1][1] else float("nan")))
PY
)
{
	echo
	echo "## Node-RED comparison, $(date -u +%Y-%m-%dT%H:%MZ) ($mode)"
	echo
	echo "Command: \`${GOFLAGS:+GOFLAGS=$GOFLAGS }bench/modbus/compare.sh $([[ $mode != gateway ]] && echo "--$mode ")--duration $duration --warmup $warmup\`"
	echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r); $(go version | cut -d' ' -f3), node $(node --version), $(mosquitto -h 2>/dev/null | head -1 | sed 's/ is an MQTT.*//')"
	echo "Both poll 10 holding registers every ${INTERVAL_MS} ms from one pymodbus $(/usr/bin/python3 -c 'import pymodbus; print(pymodbus.__version__)') server (Node-RED as unit 1, ours as unit 2) and publish QoS 1 to one mosquitto."
	echo "Jitter is |interval - ${INTERVAL_MS} ms| between consecutive requests as the server received them; CPU and RSS come from /proc over the ${duration} s window after a ${warmup} s warm-up."
	case "$mode" in
	"variant no-bridge") echo "Ours publishes into its embedded broker only (no bridge: nothing of ours reaches mosquitto), Node-RED one array per poll." ;;
	"variant one-message") echo "Ours publishes one message per poll (the 10 registers as one string point) through its bridge, Node-RED one array per poll." ;;
	"harness --discard") echo "Ours publishes nothing, Node-RED one array per poll." ;;
	minimal) echo "Ours is bench/modbus/minimal: a ticker and one request per poll, nothing decoded or published; Node-RED one array per poll." ;;
	*) echo "Ours publishes one message per register (10 per poll), Node-RED one array per poll." ;;
	esac
	echo
	echo "$table"
} >"$work/results.md"
[[ -f bench/modbus/RESULTS.md ]] || printf '# Modbus driver benchmarks\n' >bench/modbus/RESULTS.md
tee -a bench/modbus/RESULTS.md <"$work/results.md"
