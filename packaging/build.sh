#!/usr/bin/env bash
# Builds the Debian packages of the gateway into dist/:
#
#   packaging/build.sh 1.2.0    -> dist/fieldbridge-gateway_1.2.0_{amd64,arm64,armhf}.deb
#
# ARCHES="amd64" builds only some architectures; DIST=DIR writes elsewhere;
# MAINTAINER sets the package's Maintainer field. The binaries are static
# (CGO_ENABLED=0), armhf for ARMv7 (Raspberry Pi 2 and later, 32-bit OS).
# nfpm is a Go tool of packaging/go.mod, built on first use.
set -euo pipefail

version=${1:?usage: packaging/build.sh VERSION}
version=${version#v}
if [[ ! $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
	echo "build.sh: version $version must start with a digit (1.2.0, 1.2.0-rc1)" >&2
	exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
dist=${DIST:-$repo/dist}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit+=-dirty
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for arch in ${ARCHES:-amd64 arm64 armhf}; do
	case $arch in
	amd64) goenv=(GOARCH=amd64) ;;
	arm64) goenv=(GOARCH=arm64) ;;
	armhf) goenv=(GOARCH=arm GOARM=7) ;;
	*)
		echo "build.sh: unknown architecture $arch (amd64, arm64, armhf)" >&2
		exit 2
		;;
	esac
	bin=$work/$arch/fieldbridge-gateway
	env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" go -C "$repo" build -trimpath \
		-ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
		-o "$bin" ./cmd/gateway
	# nfpm reports errors on stdout: show its output only when it fails.
	if ! VERSION=$version DEB_ARCH=$arch BINARY=$bin REPO=$repo \
		MAINTAINER=${MAINTAINER:-Fieldbridge <fieldbridge@localhost>} \
		go -C "$repo/packaging" tool nfpm package --config nfpm.yaml --packager deb --target "$dist/" >"$work/nfpm.log" 2>&1; then
		cat "$work/nfpm.log" >&2
		exit 1
	fi
	echo "$dist/fieldbridge-gateway_${version}_${arch}.deb"
done
