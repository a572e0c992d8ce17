#!/usr/bin/env bash
# The shared library exports exactly the symbols its version script lists.
set -euo pipefail
lib=$1 sym=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" { sub(/@.*/, "", $3); print $3 }' | sort)
listed=$(sed -n '/global:/,/local:/p' "$sym" | grep -oE '^\s*[a-z_0-9]+;' | tr -d ' \t;' | sort)
if [ "$exported" != "$listed" ]; then
	echo "exports of $lib differ from $sym:"
	diff <(echo "$listed") <(echo "$exported") || true
	exit 1
fi
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libdaxpool.so.0 ] || { echo "SONAME is '$soname', expected libdaxpool.so.0"; exit 1; }
echo "$(echo "$exported" | wc -l) symbols exported, all listed in $(basename "$sym"); SONAME $soname"
