#!/bin/bash
# Kernel hazard 2 (docs/VERIFICATION.md "Kernel hazards"): on a dynamic dax region, a sub-device
# created with 1 GiB alignment after a smaller one is placed by the kernel at a start that is not
# 1 GiB-aligned, and writing it overwrites its neighbour. Run in a throw-away lab guest:
#
#   lab.sh run --kernel K --align none --memory 6G --append "memmap=2G%4G+0xefffffff" \
#       -- BUILD/tests/lab/hazard-placement.sh
#
# Steps: empty the region's seed device; `daxctl create-device -s 64M -a 2M` (A); a pattern into
# every 4 KiB page of A; `daxctl create-device -s 1G -a 1G` (B, placed by the kernel); another
# pattern into every page of B; then count A's pages that lost their pattern. Prints B's start,
# whether it is 1 GiB-aligned, and the count; exit 0 when the sequence ran (1 if it could not).
#
# Outside the lab, as root on a machine booted with a soft-reserved range (memmap=2G%4G+0xefffffff,
# or EFI_MEMORY_SP memory: an hmem dax region) whose device dax*.0 may be emptied, with daxctl
# and python3: `tests/lab/hazard-placement.sh` (nothing else of daxpool is needed). Modules come
# from the running kernel's tree unless DAXPOOL_LAB_MODROOT names another.
#
# The daxpool side: daxpoold never lets the kernel place a sub-device — it writes each slice's
# exact range to the seed's `mapping` (docs/BACKENDS.md "Dynamic dax regions"), checked by
# lab-dyn-check in tests/lab/dynamic-region.sh (every sub-device at exactly region start + pool
# offset, every other slice's pattern intact after the 1 GiB one was carved).
set -uo pipefail
MODROOT=${DAXPOOL_LAB_MODROOT:-}
say() { printf 'hazard: %s\n' "$*"; }
modload() { if [ -n "$MODROOT" ]; then modprobe -C /dev/null -d "$MODROOT" -a "$@"; else modprobe -a "$@"; fi; }
modload device_dax dax_hmem || { say "modprobe device_dax dax_hmem failed"; exit 1; }
seed=""
for d in /sys/bus/dax/devices/dax*.0; do
	[ -e "$d" ] && seed=${d##*/} && break
done
[ -n "$seed" ] || { say "no dynamic dax region (boot with --append memmap=2G%4G+0xefffffff)"; exit 1; }
rid=${seed#dax}
rid=${rid%.0}
say "kernel $(uname -r); region $rid, seed $seed"
daxctl disable-device "$seed" >/dev/null 2>&1
daxctl destroy-device "$seed" >/dev/null 2>&1
carve() { # SIZE ALIGN -> prints the device name
	daxctl create-device -r "$rid" -s "$1" -a "$2" 2>&1 | sed -n 's/.*"chardev":"\(dax[0-9.]*\)".*/\1/p' | head -n1
}
range() { printf '%s-%s' "$(cat "/sys/bus/dax/devices/$1/mapping0/start")" "$(cat "/sys/bus/dax/devices/$1/mapping0/end")"; }
a=$(carve 64M 2M)
[ -n "$a" ] || { say "carving A (64M, 2M) failed"; exit 1; }
say "A = $a at $(range "$a") (align $(cat "/sys/bus/dax/devices/$a/align"))"
# pattern.py DEVICE SIZE TAG write|check: one 64-bit word per 4 KiB page, (TAG << 48) | page.
pattern() {
	python3 - "$@" <<'PY'
import mmap, os, struct, sys
dev, size, tag, op = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(dev, os.O_RDWR)
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
bad = 0
for i in range(size // 4096):
    want = struct.pack("<Q", (tag << 48) | i)
    if op == "write":
        m[i * 4096:i * 4096 + 8] = want
    elif m[i * 4096:i * 4096 + 8] != want:
        bad += 1
print(bad)
PY
}
for _ in $(seq 50); do [ -c "/dev/$a" ] && break; sleep 0.1; done
pattern "/dev/$a" $((64 << 20)) 161 write >/dev/null || { say "writing A failed"; exit 1; }
say "A: pattern written, $(pattern "/dev/$a" $((64 << 20)) 161 check) of 16384 pages differ"
b=$(carve 1G 1G)
[ -n "$b" ] || { say "carving B (1G, 1G) failed"; exit 1; }
for _ in $(seq 50); do [ -c "/dev/$b" ] && break; sleep 0.1; done
start=$(cat "/sys/bus/dax/devices/$b/mapping0/start")
aligned=no
[ $((start & ((1 << 30) - 1))) -eq 0 ] && aligned=yes
say "B = $b at $(range "$b") (align $(cat "/sys/bus/dax/devices/$b/align")); start 1 GiB-aligned: $aligned"
t0=${EPOCHREALTIME/./}
pattern "/dev/$b" $((1 << 30)) 178 write >/dev/null || say "writing B failed"
say "B: pattern written in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
lost=$(pattern "/dev/$a" $((64 << 20)) 161 check)
say "RESULT: B starts at $start (1 GiB-aligned: $aligned); A lost its pattern in $lost of 16384 pages"
dmesg | grep -iE 'dax|BUG|WARN' | tail -n 10
exit 0
