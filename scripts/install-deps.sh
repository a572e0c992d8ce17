#!/usr/bin/env bash
# Installs the Debian packages daxpool needs, from the lists in scripts/deps/*.list
# (one package per line, '#' comments). Only what is missing is installed, so a second run
# costs a few dpkg queries and no network.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

lists=("$here"/deps/*.list)
if [ "$#" -gt 0 ]; then
	lists=()
	for name in "$@"; do lists+=("$here/deps/$name.list"); done
fi

wanted=()
for list in "${lists[@]}"; do
	[ -r "$list" ] || { echo "install-deps: no package list $list" >&2; exit 1; }
	while read -r pkg _; do
		case "$pkg" in ''|'#'*) continue ;; esac
		wanted+=("$pkg")
	done <"$list"
done

missing=()
for pkg in "${wanted[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
