#!/usr/bin/env bash
# Bridge benchmarks against a real mosquitto cloud over mTLS (certificates
# made here with openssl), all on 127.0.0.1. Appends results and the exact
# commands to bench/bridge/RESULTS.md.
#
#   replay  100,000-message backlog drained after the cloud comes back:
#           fieldbridge, a mosquitto bridge (persistence on, QoS 1, same
#           certificates, same cloud), and paho's own QoS 1 ceiling
#           (window 100), in the same run
#   ingest  sustained ingest with the cloud up, sync batch and always:
#           messages/s, fsyncs/s, write amplification from /proc/PID/io
#   rss     RSS of the gateway process with 1,000,000 messages buffered
#
# Usage: bench/bridge/run.sh [replay] [ingest] [rss]   (default: all three)
# Needs: mosquitto (2.0.x), openssl, Go.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
for tool in mosquitto openssl go; do
	command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y mosquitto openssl)" >&2; exit 1; }
done
sections=("$@")
[[ ${#sections[@]} -gt 0 ]] || sections=(replay ingest rss)

source bench/lib.sh
bench_init bridge

go build -o "$work/harness" ./bench/bridge/harness
H=$work/harness

# ---- certificates ----
pki=$work/pki
mkdir -p "$pki"
(
	cd "$pki"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
	openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj "/CN=bench CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
	leaf() { # name ext
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
		openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
		printf '%b' "$2" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
	}
	leaf cloud 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n'
	for c in gw sub paho; do leaf $c 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n'; done
)
tls() { echo -ca "$pki/ca.crt" -cert "$pki/$1.crt" -key "$pki/$1.key"; }

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(freeport)
cloud_conf=$work/cloud.conf
mkdir -p "$work/cloud"
cat >"$cloud_conf" <<EOF
user root
listener $cport 127.0.0.1
cafile $pki/ca.crt
certfile $pki/cloud.crt
keyfile $pki/cloud.key
require_certificate true
use_identity_as_username true
persistence true
persistence_location $work/cloud/
max_queued_messages 0
max_inflight_messages 100
log_dest file $work/cloud.log
log_type error
log_type warning
EOF

cloud_pid=
cloud_start() {
	mosquitto -c "$cloud_conf" 2>>"$work/cloud.err" &
	cloud_pid=$!
	pids+=("$cloud_pid")
}
cloud_wait() { until (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null; do sleep 0.05; done; }
cloud_stop() { kill "$cloud_pid"; wait "$cloud_pid" 2>/dev/null || true; }
cloud_reset() { rm -rf "$work/cloud" && mkdir -p "$work/cloud"; }

# gateway_start DIR [flags...]: runs the harness gateway, sets gw_pid and gw_url.
gw_pid= gw_url=
gateway_start() {
	local dir=$1
	shift
	rm -rf "$dir"
	: >"$work/gateway.out"
	"$H" gateway -dir "$dir" -cloud "mqtts://127.0.0.1:$cport" $(tls gw) "$@" >"$work/gateway.out" 2>>"$work/gateway.err" &
	gw_pid=$!
	pids+=("$gw_pid")
	until grep -q '^LOCAL ' "$work/gateway.out"; do
		kill -0 "$gw_pid" || { cat "$work/gateway.err" >&2; exit 1; }
		sleep 0.05
	done
	gw_url=$(sed -n 's/^LOCAL //p' "$work/gateway.out")
}
gateway_stop() { kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; }
io_written() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }
rss_kib() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }
last_stat() { grep '^STATS' "$work/gateway.out" | tail -n 1 | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }

machine="$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r), $(go version | cut -d' ' -f3), $(mosquitto -h 2>/dev/null | head -1), ext4 ($(df -T /var/tmp | awk 'NR==2 {print $2}'))"
out=$work/results.md
{
	echo
	echo "## Bridge benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Command: \`bench/bridge/run.sh ${sections[*]}\`"
	echo "Machine: $machine"
	echo "Payloads are 200 bytes on 10 topics; the cloud is mosquitto with mTLS on 127.0.0.1."
} >"$out"

N=100000
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }
rate_of() { awk -v n=$N -v d="${1%s}" 'BEGIN {printf "%.0f", n/d}'; }
transfer() { awk -v a="$(field "$1" first)" -v b="$(field "$1" last)" 'BEGIN {printf "%.3fs", (b-a)/1e9}'; }

# replay_round: one measurement of each contender, one table row each.
replay_round() {
	local round=$1 sub_out=$work/sub.out sub_pid
	# -- fieldbridge --
	cloud_reset
	cloud_start
	"$H" sub -url "127.0.0.1:$cport" $(tls sub) -id replay-fb -register
	cloud_stop
	gateway_start "$work/fb-buffer"
	"$H" pub -url "$gw_url" -n $N -size 200 >/dev/null
	"$H" sub -url "127.0.0.1:$cport" $(tls sub) -id replay-fb -n $N >"$sub_out" &
	sub_pid=$!
	sleep 1 # both the subscriber and the bridge are retrying now
	cloud_start
	wait $sub_pid
	local fb; fb=$(cat "$sub_out")
	gateway_stop
	cloud_stop

	# -- mosquitto bridge --
	cloud_reset
	local eport; eport=$(freeport)
	rm -rf "$work/edge" && mkdir -p "$work/edge"
	cat >"$work/edge.conf" <<-EOF
		user root
		listener $eport 127.0.0.1
		allow_anonymous true
		persistence true
		persistence_location $work/edge/
		max_queued_messages 0
		max_inflight_messages 100
		log_dest file $work/edge.log
		log_type error
		log_type warning
		connection cloud
		address 127.0.0.1:$cport
		bridge_protocol_version mqttv311
		bridge_cafile $pki/ca.crt
		bridge_certfile $pki/gw.crt
		bridge_keyfile $pki/gw.key
		cleansession false
		notifications false
		topic plant/# out 1 "" sites/a/
	EOF
	cloud_start
	"$H" sub -url "127.0.0.1:$cport" $(tls sub) -id replay-mq -register
	cloud_stop
	mosquitto -c "$work/edge.conf" 2>>"$work/edge.err" &
	local edge_pid=$!
	pids+=("$edge_pid")
	until (exec 3<>"/dev/tcp/127.0.0.1/$eport") 2>/dev/null; do sleep 0.05; done
	"$H" pub -url "tcp://127.0.0.1:$eport" -n $N -size 200 >/dev/null
	"$H" sub -url "127.0.0.1:$cport" $(tls sub) -id replay-mq -n $N >"$sub_out" &
	sub_pid=$!
	sleep 1
	cloud_start
	wait $sub_pid
	local mq; mq=$(cat "$sub_out")
	kill "$edge_pid"; wait "$edge_pid" 2>/dev/null || true
	cloud_stop

	# -- paho's own ceiling --
	cloud_reset
	cloud_start
	cloud_wait
	"$H" sub -url "127.0.0.1:$cport" $(tls sub) -id replay-paho -n $N >"$sub_out" &
	sub_pid=$!
	sleep 0.5 # subscribed before the first publish
	local ph; ph=$("$H" paho -url "127.0.0.1:$cport" $(tls paho) -n $N -size 200 -window 100)
	wait $sub_pid
	local phs; phs=$(cat "$sub_out")
	cloud_stop

	local fbd mqd phd
	fbd=$(field "$fb" drain); mqd=$(field "$mq" drain); phd=$(field "$phs" drain)
	{
		echo "| $round | fieldbridge bridge | $(field "$fb" first_after) | $fbd | $(transfer "$fb") | $(rate_of "$fbd") |"
		echo "| $round | mosquitto 2.0.11 bridge | $(field "$mq" first_after) | $mqd | $(transfer "$mq") | $(rate_of "$mqd") |"
		echo "| $round | paho QoS 1, window 100 (ceiling) | - | $phd | $(transfer "$phs") | $(field "$ph" rate) publisher, $(rate_of "$phd") subscriber |"
	} >>"$out"
	echo "raw $round: \`$fb\` / \`$mq\` / \`$ph\` \`$phs\`" >>"$work/raw.md"
}

replay() {
	echo "== replay" >&2
	{
		echo
		echo "### Replay of a $N-message backlog over mTLS"
		echo
		echo "The backlog is published (QoS 1, every PUBACK received) while the cloud is down; then the cloud starts."
		echo "A subscriber with a persistent session connects as soon as the cloud accepts connections (retrying every 5 ms)"
		echo "and times, from its own connection, the first message and the last of the $N distinct messages:"
		echo "*first* is cloud-up to the first message, *drain* cloud-up to the last, *transfer* first to last."
		echo "fieldbridge: defaults (inflight 100, reconnect 200ms..5s, sync batch). mosquitto bridge: persistence true,"
		echo "QoS 1, cleansession false, max_inflight_messages 100, max_queued_messages 0, restart_timeout default (5 30)."
		echo "paho: one client publishing straight to the cloud with at most 100 unacknowledged messages; its drain is"
		echo "timed from the subscriber's connection, just before the publisher starts."
		echo
		echo "| round | | first | drain | transfer | messages/s (drain) |"
		echo "|---|---|---|---|---|---|"
	} >>"$out"
	: >"$work/raw.md"
	for round in 1 2 3; do replay_round $round; done
	{ echo; cat "$work/raw.md"; } >>"$out"
}

ingest() {
	echo "== ingest" >&2
	cloud_reset
	cloud_start
	cloud_wait
	{
		echo
		echo "### Sustained ingest with the cloud up"
		echo
		echo "One local publisher (QoS 1, window 100; 8 connections where noted) through broker → buffer → bridge → cloud."
		echo "Write amplification = write_bytes of the gateway process (/proc/PID/io) / payload bytes published."
		echo
		echo "| sync | offered rate | messages | achieved msg/s | fsyncs/s | write amplification |"
		echo "|---|---|---|---|---|---|"
	} >>"$out"
	local mode rate n conns
	for spec in "batch 100 3000 1" "batch 0 300000 1" "always 100 3000 1" "always 0 100000 1" "always 0 200000 8"; do
		read -r mode rate n conns <<<"$spec"
		gateway_start "$work/ingest-buffer" -sync "$mode"
		sleep 1.5 # connected to the cloud
		local w0 f0 t0 w1 f1 t1 pubout
		w0=$(io_written "$gw_pid"); f0=$(last_stat fsyncs); t0=$(date +%s.%N)
		pubout=$("$H" pub -url "$gw_url" -n "$n" -size 200 -rate "$rate" -conns "$conns")
		t1=$(date +%s.%N)
		sleep 1.2 # the last background fsync and a STATS line
		w1=$(io_written "$gw_pid"); f1=$(last_stat fsyncs)
		gateway_stop
		local el achieved
		el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')
		achieved=$(awk -v n="$n" -v e="$el" 'BEGIN {printf "%.0f", n/e}')
		local label=$rate
		[[ $rate == 0 ]] && label="flat out"
		[[ $conns != 1 ]] && label="$label, $conns connections"
		echo "| $mode | $label | $n | $achieved | $(awk -v a="$f0" -v b="$f1" -v e="$el" 'BEGIN {printf "%.0f", (b-a)/e}') | $(awk -v a="$w0" -v b="$w1" -v n="$n" 'BEGIN {printf "%.2fx", (b-a)/(n*200)}') |" >>"$out"
	done
	cloud_stop
}

rss() {
	echo "== rss" >&2
	local n=1000000
	gateway_start "$work/rss-buffer" # the cloud is down: everything stays buffered
	"$H" pub -url "$gw_url" -n $n -size 200 -conns 4 >/dev/null
	sleep 1.2
	local backlog rss hwm
	backlog=$(last_stat backlog)
	rss=$(rss_kib "$gw_pid" VmRSS); hwm=$(rss_kib "$gw_pid" VmHWM)
	gateway_stop
	{
		echo
		echo "### Memory with $n messages buffered"
		echo
		echo "Cloud down; 4 local publishers (QoS 1, 200-byte payloads); measured after the last PUBACK."
		echo
		echo "| backlog (messages) | VmRSS | VmHWM (peak) |"
		echo "|---|---|---|"
		echo "| $backlog | $((rss / 1024)) MiB | $((hwm / 1024)) MiB |"
	} >>"$out"
}

for s in "${sections[@]}"; do "$s"; done
[[ -f bench/bridge/RESULTS.md ]] || printf '# Bridge benchmarks\n' >bench/bridge/RESULTS.md
tee -a bench/bridge/RESULTS.md <"$out"
