#!/usr/bin/env bash
# Runs the gpio driver's tests (gpiosim_test.go) against the Linux kernel's
# gpio-sim, in a qemu VM: the host kernel has no GPIO.
#
# The VM boots Debian sid's kernel (bookworm's lacks CONFIG_GPIO_SIM) under
# TCG on a q35 machine (microvm hangs under TCG), from an initramfs holding
# busybox, configfs and gpio-sim with their dependencies, and a static test
# binary. The kernel comes through an apt configuration of its own, so the
# system's sources are left alone, and is cached: later runs need no
# network.
#
# Exits 0 only when the VM booted and every test passed.
#
# Environment:
#   GPIO_VM_CACHE    cache folder (default ~/.cache/fieldbridge-gpio-vm)
#   GPIO_VM_REFRESH  1: fetch sid's current kernel even when one is cached
#   GPIO_VM_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   GPIO_VM_RUN      -test.run pattern (default ^TestSim)
#   GPIO_VM_TIMEOUT  seconds the VM may run (default 600)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${GPIO_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/fieldbridge-gpio-vm}
mirror=${GPIO_VM_MIRROR:-http://deb.debian.org/debian}
run_pattern=${GPIO_VM_RUN:-^TestSim}
vm_timeout=${GPIO_VM_TIMEOUT:-600}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "gpio vmtest: $*" >&2; }
die() {
	echo "gpio vmtest: FAILED: $*" >&2
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

t_start=$(now)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- host packages ---------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] || need+=(busybox-static)
command -v xz >/dev/null || need+=(xz-utils)
command -v cpio >/dev/null || need+=(cpio)
[ -r "$keyring" ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing packages: ${need[*]} (apt-get install ${need[*]})"
	say "installing ${need[*]}"
	apt-get update -qq >/dev/null || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
fi
busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox not found after installing busybox-static"

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || die "go not found (set GO=/path/to/go)"

# --- kernel and modules ----------------------------------------------------
kdir=$cache/kernel
fetch_kernel() {
	local apt=$cache/apt tree
	mkdir -p "$apt/etc/sources.list.d" "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
	echo "deb [signed-by=$keyring] $mirror sid main" >"$apt/etc/sources.list"
	local opts=(-o "Dir::Etc::sourcelist=$apt/etc/sources.list" -o "Dir::Etc::sourceparts=$apt/etc/sources.list.d"
		-o "Dir::State=$apt/state" -o "Dir::State::status=/dev/null" -o "Dir::Cache=$apt/cache"
		-o "APT::Architecture=amd64" -o "APT::Sandbox::User=root" -o "Acquire::Languages=none"
		-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false")
	say "fetching Debian sid's package lists"
	apt-get "${opts[@]}" -qq update || die "apt-get update for sid failed (mirror $mirror; a signature error needs a newer debian-archive-keyring)"
	local img abi
	img=$(apt-cache "${opts[@]}" depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	[ -n "$img" ] || die "sid has no linux-image-amd64 kernel"
	abi=${img#linux-image-}
	# Newer kernels split the image into base (config), binary (vmlinuz)
	# and modules packages; older ones hold everything in the image.
	local pkgs=("$img")
	while read -r dep; do pkgs+=("$dep"); done < <(apt-cache "${opts[@]}" depends "$img" |
		awk -v abi="$abi" '$1 == "Depends:" && ($2 == "linux-base-" abi || $2 == "linux-binary-" abi || $2 == "linux-modules-" abi) { print $2 }')
	say "downloading ${pkgs[*]}"
	rm -f "$apt/debs"/*.deb
	(cd "$apt/debs" && apt-get "${opts[@]}" -qq download "${pkgs[@]}") || die "apt-get download ${pkgs[*]} failed"

	tree=$work/debs
	mkdir -p "$tree"
	for deb in "$apt/debs"/*.deb; do dpkg-deb -x "$deb" "$tree"; done
	local mods="" vmlinuz kver d
	for d in "$tree"/usr/lib/modules/* "$tree"/lib/modules/*; do
		[ -d "$d/kernel" ] && mods=$d && break
	done
	[ -n "$mods" ] || die "no /lib/modules in ${pkgs[*]}"
	kver=$(basename "$mods")
	vmlinuz=$(find "$tree" \( -path "*/lib/modules/$kver/vmlinuz" -o -path "*/boot/vmlinuz-$kver" \) | head -n1)
	[ -n "$vmlinuz" ] || die "no vmlinuz for $kver in ${pkgs[*]}"
	if [ -f "$mods/config" ]; then
		grep -qE '^CONFIG_GPIO_SIM=[ym]' "$mods/config" || die "kernel $kver lacks CONFIG_GPIO_SIM"
		grep -q '^CONFIG_GPIO_CDEV=y' "$mods/config" || die "kernel $kver lacks CONFIG_GPIO_CDEV"
	fi

	rm -rf "$kdir.new"
	mkdir -p "$kdir.new/modules"
	cp "$vmlinuz" "$kdir.new/vmlinuz"
	# gpio-sim and what it depends on, deepest first, decompressed: the
	# initramfs has no modprobe and busybox insmod takes a plain .ko.
	local order=() seen=" "
	add_module() {
		local name=$1 file dep deps
		case "$seen" in *" $name "*) return ;; esac
		seen="$seen$name "
		file=$(find "$mods/kernel" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" -o -name "${name//-/_}.ko*" \) | head -n1)
		if [ -z "$file" ]; then
			if grep -qE "/(${name//_/-}|${name//-/_})\.ko\$" "$mods/modules.builtin" 2>/dev/null; then
				return # built in
			fi
			die "module $name not found in kernel $kver"
		fi
		case "$file" in
		*.ko.xz) xz -dc "$file" >"$kdir.new/modules/$name.ko" ;;
		*.ko.zst) zstd -qdc "$file" >"$kdir.new/modules/$name.ko" || die "zstd is needed for $file" ;;
		*.ko.gz) gzip -dc "$file" >"$kdir.new/modules/$name.ko" ;;
		*) cp "$file" "$kdir.new/modules/$name.ko" ;;
		esac
		deps=$(tr '\0' '\n' <"$kdir.new/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1)
		for dep in ${deps//,/ }; do add_module "$dep"; done
		order+=("$name.ko")
	}
	add_module configfs
	add_module gpio-sim
	printf '%s\n' "${order[@]}" >"$kdir.new/modules/order"
	echo "$kver" >"$kdir.new/version"
	# Only the kernel and the few modules are kept: the packages are
	# 130 MB that no later run reads.
	rm -rf "$tree" "$kdir" "$apt/debs"
	mv "$kdir.new" "$kdir"
	say "cached kernel $kver in $kdir"
}

t_fetch=$(now)
if [ "${GPIO_VM_REFRESH:-0}" = 1 ] || [ ! -f "$kdir/version" ] || [ ! -f "$kdir/vmlinuz" ]; then
	fetch_kernel
fi
kver=$(cat "$kdir/version")
say "kernel $kver ($(since "$t_fetch") to get it), modules: $(tr '\n' ' ' <"$kdir/modules/order")"

# --- test binary and initramfs ---------------------------------------------
root=$work/root
mkdir -p "$root/bin" "$root/lib/modules" "$root/dev" "$root/proc" "$root/sys" "$root/tmp"

t_build=$(now)
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$GO" test -c -tags gpiosim -o "$root/gpio.test" ./adapters/gpio/) ||
	die "building the test binary failed"
say "test binary built in $(since "$t_build")"

cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"
cp "$kdir/modules/"*.ko "$kdir/modules/order" "$root/lib/modules/"
echo "-test.run=$run_pattern" >"$root/test-args"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio" || die "cpio failed"

# --- boot ------------------------------------------------------------------
log=$work/console.log
say "booting qemu (TCG, q35) with kernel $kver"
t_boot=$(now)
set +e
timeout --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
	-accel tcg -M q35 -m 512 -smp 1 \
	-nodefaults -display none -no-reboot -serial stdio -monitor none \
	-kernel "$kdir/vmlinuz" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 quiet" </dev/null 2>&1 |
	tr -d '\r' | tee "$log" | sed -n '/^GPIOSIM-BOOTED/,$p'
qemu_rc=${PIPESTATUS[0]}
set -e
boot_time=$(since "$t_boot")
cp "$log" "$cache/console.log"

grep -q '^GPIOSIM-BOOTED' "$log" || {
	tail -n 40 "$log" >&2
	grep -q '^GPIOSIM-SETUP-FAILED' "$log" && die "gpio-sim could not be set up in the VM (above)"
	die "the VM did not boot (qemu exit $qemu_rc; console above)"
}
exit_line=$(grep -m1 '^GPIOSIM-EXIT=' "$log" || true)
[ -n "$exit_line" ] || die "the tests did not finish in the VM (qemu exit $qemu_rc after $boot_time; timeout ${vm_timeout}s)"
passed=$(grep -c '^--- PASS' "$log" || true)
failed=$(grep -c '^--- FAIL' "$log" || true)
say "boot, tests and power-off took $boot_time; whole run $(since "$t_start")"
echo "gpio-sim: $passed passed, $failed failed"
[ "${exit_line#GPIOSIM-EXIT=}" = 0 ] || die "tests failed in the VM (${exit_line})"
[ "$passed" -gt 0 ] || die "no test ran in the VM (pattern $run_pattern)"
