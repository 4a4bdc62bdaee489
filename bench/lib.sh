# Shared by the benchmark scripts: source it after `cd` to the repository.
#
# bench_init NAME   makes $work, a fresh folder on disk (/var/tmp: /tmp may
#                   be a tmpfs, where fsync costs nothing), and removes it
#                   and stops every process in $pids on exit; keep=1 keeps
#                   the folder.
# free_port         prints a free TCP port on 127.0.0.1.
# wait_port PORT    waits until something listens on 127.0.0.1:PORT.

bench_init() {
	work=$(mktemp -d "/var/tmp/fieldbridge-$1.XXXXXX")
	pids=()
	keep=${keep:-0}
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if ((keep)); then echo "work directory kept: $work"; else rm -rf "$work"; fi
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
	for _ in $(seq 300); do
		(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}
