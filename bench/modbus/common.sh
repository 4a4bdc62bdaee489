# Shared by the Modbus comparisons (compare.sh, floor.sh); source it after
# bench/lib.sh and bench_init, from the repository.
#
# start_pymodbus JSON   runs adapters/modbus/modbustest/pyserver.py over TCP
#                       with that configuration and sets $mbport.
# start_mosquitto       runs a plain mosquitto on 127.0.0.1 and sets $mqport.
# gateway_config V      prints the gateway's configuration (below).

start_pymodbus() {
	printf '%s\n' "$1" >"$work/pymodbus.json"
	coproc PYMODBUS { exec /usr/bin/python3 adapters/modbus/modbustest/pyserver.py tcp "$work/pymodbus.json" 2>"$work/pymodbus.err"; }
	pids+=("$PYMODBUS_PID")
	read -r _ mbport <&"${PYMODBUS[0]}" || { cat "$work/pymodbus.err" >&2; return 1; }
}

start_mosquitto() {
	mqport=$(free_port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mqport" >"$work/mosquitto.conf"
	# As root, mosquitto would switch to its own user.
	if [[ $(id -u) == 0 ]]; then echo "user root" >>"$work/mosquitto.conf"; fi
	mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
	pids+=($!)
	wait_port "$mqport"
}

# gateway_config VARIANT: the gateway's configuration, on stdout. Uses $work, $mbport (the
# pymodbus server, unit 2) and $mqport (mosquitto); makes an empty
# $work/data; polls every $INTERVAL_MS (100) ms. VARIANT is one of
#   bridge        10 holding registers, one message per
#                 register, bridged QoS 1 to mosquitto through the buffer
#   no-bridge     the same without the bridge
#   sync-off      bridge, with the buffer never fsynced
#   one-message   bridge, with the 10 registers as one point (a string of
#                 length 10): one message per poll
gateway_config() {
	local points bridge=1 sync=batch
	points=$(for a in 0 1 2 3 4 5 6 7 8 9; do echo "      - {name: r$a, table: holding, address: $a}"; done)
	case $1 in
	bridge) ;;
	no-bridge) bridge=0 ;;
	sync-off) sync=off ;;
	one-message) points="      - {name: registers, table: holding, address: 0, type: string, length: 10}" ;;
	*) echo "gateway_config: unknown variant $1" >&2; return 2 ;;
	esac
	rm -rf "$work/data" && mkdir -p "$work/data"
	cat <<YAML
gateway: {id: bench-gw, data_dir: $work/data}
log: {level: warn, format: text}
broker:
  listeners:
    - {name: local, type: tcp, address: 127.0.0.1:$(free_port)}
publish: {topic: "{gateway}/{device}/{point}", format: json, qos: 1, retain: false}
devices:
  - name: plc
    driver: modbus
    url: tcp://127.0.0.1:$mbport
    unit_id: 2
    poll_interval: ${INTERVAL_MS:-100}ms
    points:
$points
YAML
	((bridge)) && cat <<YAML
bridges:
  - name: mosquitto
    url: mqtt://127.0.0.1:$mqport
    buffer: {sync: $sync}
    routes:
      - {direction: out, filter: "bench-gw/#", qos: 1}
YAML
	return 0
}
