#!/bin/sh
# Usage: install.sh [--no-start] [--root DIR] BINARY | PACKAGE.deb
#
# Installs the Fieldbridge gateway as a systemd service, from a release
# binary or from a .deb, then enables and starts it. Running it again changes
# nothing; running it with a newer binary upgrades it and restarts the service.
#
#   sudo ./install.sh ./fieldbridge-gateway                  a release binary
#   sudo ./install.sh ./fieldbridge-gateway_1.2.0_arm64.deb  a package (dpkg -i)
#
#   --no-start   enable the service but do not start or restart it
#   --root DIR   install into DIR instead of / (an image being built, a test);
#                DESTDIR=DIR does the same. Users and groups are created in
#                DIR/etc, the service is enabled there, nothing is started.
#
# The unit, the udev rule, the sysusers and modules-load files and the
# default configuration are taken from this script's folder.
set -eu

unit=fieldbridge-gateway.service
here=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "install.sh: $*" >&2
	exit 1
}
usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit "$1"
}

root=${DESTDIR:-}
start=yes
src=
while [ $# -gt 0 ]; do
	case $1 in
	--no-start) start=no ;;
	--root)
		[ $# -ge 2 ] || die "--root needs a directory"
		root=$2
		shift
		;;
	--root=*) root=${1#--root=} ;;
	-h | --help) usage 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[ -z "$src" ] || die "give one binary or one .deb"
		src=$1
		;;
	esac
	shift
done
[ -n "$src" ] || usage 2
[ -f "$src" ] || die "$src: no such file"
# A bare name would be looked up in PATH when run.
case $src in
/* | ./* | ../*) ;;
*) src=./$src ;;
esac
if [ -n "$root" ]; then
	mkdir -p "$root"
	root=$(cd "$root" && pwd)
	[ "$root" != / ] || root=
fi
live=no
[ -n "$root" ] || live=yes
if [ "$live" = yes ] && [ "$(id -u)" != 0 ]; then
	die "run as root (sudo $0 ...)"
fi
# systemd runs here: units can be reloaded and started.
running=no
if [ "$live" = yes ] && [ -d /run/systemd/system ]; then
	running=yes
fi

# A .deb does everything in its maintainer scripts.
case $src in
*.deb)
	if [ "$start" = no ]; then
		export FIELDBRIDGE_NO_START=1
	fi
	if [ "$live" = yes ]; then
		exec dpkg -i "$src"
	fi
	admin=$root/var/lib/dpkg
	mkdir -p "$admin/info" "$admin/updates" "$root/var/log"
	[ -e "$admin/status" ] || : >"$admin/status"
	[ -e "$admin/available" ] || : >"$admin/available"
	exec dpkg --root="$root" --log="$root/var/log/dpkg.log" --force-script-chrootless -i "$src"
	;;
esac

[ -x "$src" ] || die "$src is not executable"
for f in "$unit" 60-fieldbridge-gpio.rules sysusers.conf modules-load.conf gateway.yaml; do
	[ -f "$here/$f" ] || die "$here/$f is missing: keep install.sh with the files of its folder"
done
if [ "$live" = yes ] && ! "$src" version >/dev/null 2>&1; then
	die "$src does not run on this machine ($(uname -m)): take the build for this architecture"
fi

# put SRC DST MODE copies SRC to DST (under root) unless DST already has
# that content and mode; it succeeds only when it changed something.
put() {
	dst=$root$2
	if [ -f "$dst" ] && cmp -s "$1" "$dst" && [ "$(stat -c %a "$dst")" = "${3#0}" ]; then
		return 1
	fi
	mkdir -p "$(dirname "$dst")"
	cp "$1" "$dst.new"
	chmod "$3" "$dst.new"
	[ "$(id -u)" != 0 ] || chown 0:0 "$dst.new"
	mv -f "$dst.new" "$dst"
	echo "installed $2"
}

# gid NAME prints the id of group NAME in root's /etc/group.
gid() {
	[ -f "$root/etc/group" ] && awk -F: -v g="$1" '$1 == g { print $3; exit }' "$root/etc/group"
}

# gpio_rule_exists succeeds when a udev rule other than ours already gives
# GPIO chips a group (Raspberry Pi OS: 99-com.rules).
gpio_rule_exists() {
	for d in /etc/udev/rules.d /run/udev/rules.d /usr/lib/udev/rules.d /lib/udev/rules.d; do
		for f in "$root$d"/*.rules; do
			[ -f "$f" ] && [ "${f##*/}" != 60-fieldbridge-gpio.rules ] || continue
			if grep -E '^[^#]*(SUBSYSTEM=="gpio"|KERNEL=="gpiochip)' "$f" | grep -q 'GROUP='; then
				return 0
			fi
		done
	done
	return 1
}

restart=no
put "$src" /usr/bin/fieldbridge-gateway 0755 && restart=yes
unit_changed=no
put "$here/$unit" "/usr/lib/systemd/system/$unit" 0644 && unit_changed=yes && restart=yes
put "$here/sysusers.conf" /usr/lib/sysusers.d/fieldbridge-gateway.conf 0644 || true
put "$here/modules-load.conf" /usr/lib/modules-load.d/fieldbridge-gateway.conf 0644 || true

# The user fieldbridge (no login, home /var/lib/fieldbridge), the group
# gpio, and the user's membership of dialout and gpio.
if command -v systemd-sysusers >/dev/null 2>&1; then
	if [ "$live" = yes ]; then
		systemd-sysusers fieldbridge-gateway.conf
	else
		systemd-sysusers --root="$root" fieldbridge-gateway.conf
	fi
elif [ "$live" = yes ]; then
	getent group gpio >/dev/null || groupadd --system gpio
	getent group dialout >/dev/null || groupadd --system dialout
	getent passwd fieldbridge >/dev/null ||
		useradd --system --user-group --home-dir /var/lib/fieldbridge --no-create-home \
			--shell /usr/sbin/nologin --comment "Fieldbridge gateway" fieldbridge
	usermod --append --groups dialout,gpio fieldbridge
else
	echo "install.sh: systemd-sysusers not found: create the user fieldbridge in $root yourself" >&2
fi

rule_changed=no
if ! gpio_rule_exists; then
	put "$here/60-fieldbridge-gpio.rules" /etc/udev/rules.d/60-fieldbridge-gpio.rules 0644 && rule_changed=yes
fi

# The default configuration, readable by the service, never overwritten.
if [ ! -d "$root/etc/fieldbridge" ]; then
	mkdir -p "$root/etc/fieldbridge"
	chmod 0755 "$root/etc/fieldbridge"
fi
conf=$root/etc/fieldbridge/gateway.yaml
if [ ! -e "$conf" ]; then
	cp "$here/gateway.yaml" "$conf.new"
	group=$(gid fieldbridge || true)
	if [ -n "$group" ]; then
		chmod 0640 "$conf.new"
		[ "$(id -u)" != 0 ] || chown "0:$group" "$conf.new"
	else
		chmod 0644 "$conf.new"
	fi
	mv "$conf.new" "$conf"
	echo "installed /etc/fieldbridge/gateway.yaml"
fi

if [ "$live" = yes ]; then
	# Register the USB serial majors now, as modules-load.d does at boot.
	modprobe -a -q usbserial cdc_acm 2>/dev/null || true
	if [ "$rule_changed" = yes ] && command -v udevadm >/dev/null 2>&1; then
		udevadm control --reload-rules || true
		udevadm trigger --action=add --subsystem-match=gpio || true
	fi
fi

if ! command -v systemctl >/dev/null 2>&1; then
	echo "install.sh: systemctl not found: enable and start $unit yourself" >&2
	exit 0
fi
if [ "$running" = no ]; then
	systemctl --root="${root:-/}" --quiet enable "$unit"
	[ "$live" = no ] || echo "systemd is not running here: $unit is enabled and starts at the next boot"
	exit 0
fi
[ "$unit_changed" = no ] || systemctl daemon-reload
systemctl --quiet enable "$unit"
[ "$start" = yes ] || exit 0
if [ "$restart" = yes ] && systemctl --quiet is-active "$unit"; then
	action=restart
else
	action=start
fi
if ! systemctl "$action" "$unit"; then
	die "$unit did not start: journalctl -u fieldbridge-gateway -n 50"
fi
echo "$unit is running: journalctl -u fieldbridge-gateway -f"
