#!/bin/sh
# Installs the Debian packages Rhodes needs to build, test and run its demo,
# when any is missing; does nothing (and needs no root) when all are there.
# The core's packages are listed here; see PART/deps.list below.
# Run as root, or as a user who may sudo. Used by `make test`, `make demo`
# and `make bench`; safe to run by hand.
set -eu

# one package per line: what for
PACKAGES="
build-essential
gcc-12-plugin-dev
pkg-config
libyaml-dev
libsqlite3-dev
libcurl4-openssl-dev
etcd-server
libjansson-dev
libelf-dev
perl
dpkg-dev
"
# each part lists the packages only it needs in PART/deps.list (one per line,
# '#' starts a comment)
top=$(cd "$(dirname "$0")/.." && pwd)
for list in "$top"/*/deps.list; do
	[ -f "$list" ] || continue
	PACKAGES="$PACKAGES $(sed -e 's/#.*//' "$list")"
done

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "scripts/deps.sh: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "scripts/deps.sh: need root (or sudo) to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >&2
