#!/usr/bin/env bash
# Reserves huge pages and mounts a hugetlbfs for the emulated backend, or gives them back.
#   hugepages.sh reserve PAGESIZE(2M|1G) COUNT MOUNTPOINT   -> prints "ok" or the reason it cannot
#   hugepages.sh release PAGESIZE MOUNTPOINT
# The previous reservation is remembered in MOUNTPOINT.prev so release restores it exactly.
set -euo pipefail
cmd=${1:?usage: hugepages.sh reserve|release PAGESIZE ...}
size=${2:?page size 2M or 1G}
case "$size" in
	2M) kb=2048 ;;
	1G) kb=1048576 ;;
	*) echo "hugepages.sh: page size must be 2M or 1G, not $size" >&2; exit 2 ;;
esac
nr=/sys/kernel/mm/hugepages/hugepages-${kb}kB/nr_hugepages

case "$cmd" in
reserve)
	count=${3:?count} mnt=${4:?mountpoint}
	[ -w "$nr" ] || { echo "cannot reserve $size huge pages: $nr is not writable (not root, or no hugetlb support)"; exit 1; }
	prev=$(cat "$nr")
	free_now=$(cat "/sys/kernel/mm/hugepages/hugepages-${kb}kB/free_hugepages")
	if [ "$free_now" -lt "$count" ]; then
		want=$((prev + count - free_now))
		echo "$want" >"$nr" 2>/dev/null || true
		got=$(cat "$nr")
		if [ "$got" -lt "$want" ]; then
			echo "$prev" >"$nr" 2>/dev/null || true
			echo "cannot reserve $count $size huge pages: the kernel gave $((got - prev)) (memory fragmented or too small)"
			exit 1
		fi
	fi
	mkdir -p "$mnt"
	echo "$prev" >"$mnt.prev"
	if ! mountpoint -q "$mnt"; then
		mount -t hugetlbfs -o "pagesize=$size,mode=0770" none "$mnt" ||
			{ echo "cannot mount hugetlbfs at $mnt"; exit 1; }
	fi
	echo ok
	;;
release)
	mnt=${3:?mountpoint}
	if mountpoint -q "$mnt"; then umount "$mnt"; fi
	if [ -f "$mnt.prev" ]; then
		echo "$(cat "$mnt.prev")" >"$nr" 2>/dev/null || true
		rm -f "$mnt.prev"
	fi
	rmdir "$mnt" 2>/dev/null || true
	;;
*)
	echo "usage: hugepages.sh reserve|release PAGESIZE ..." >&2
	exit 2
	;;
esac
