#!/usr/bin/env bash
# Builds (or reuses) the busybox initramfs for one cached kernel.
#
#   mkinitramfs.sh KERNEL_DIR      (a directory made by fetch-kernel.sh)
#
# It holds busybox-static, guest/init and the modules the kernel needs to mount 9p over virtio
# (in dependency order, decompressed: busybox insmod wants plain .ko). Cached in KERNEL_DIR as
# initramfs-<hash>.cpio.gz, the hash covering init, busybox and the module list.
# Prints the initramfs path on stdout.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[ "$#" -eq 1 ] || die "usage: mkinitramfs.sh KERNEL_DIR"
kdir=${1%/}
[ -e "$kdir/.complete" ] || die "$kdir is not a complete kernel directory (run fetch-kernel.sh)"
need_cmd cpio gzip modprobe xz flock
busybox=/bin/busybox
applets=$("$busybox" --list 2>/dev/null) || applets=""
grep -qx switch_root <<<"$applets" || die "no static busybox at $busybox (package busybox-static)"
ver=$(cat "$kdir/version")
root="$kdir/root"

# Modules (and their dependencies, in load order) for virtio-pci + 9p; built-in ones are absent.
mods=()
while read -r kind path _; do
	[ "$kind" = insmod ] || continue
	case " ${mods[*]-} " in *" $path "*) continue ;; esac
	mods+=("$path")
done < <(modprobe -C /dev/null -d "$root" -S "$ver" --show-depends -a \
	virtio_pci 9pnet_virtio 9p 2>/dev/null || true)
[ "${#mods[@]}" -gt 0 ] || die "found none of the 9p modules in $root/lib/modules/$ver"

hash=$( {
	cat "$lab_dir/guest/init"
	sha256sum "$busybox"
	printf '%s\n' "${mods[@]##*/}"
} | sha256sum | cut -c1-12)
out="$kdir/initramfs-$hash.cpio.gz"
exec 9>"$kdir/.initramfs.lock"
flock 9
if [ -s "$out" ]; then
	printf '%s\n' "$out"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,modules,newroot}
cp "$busybox" "$tmp/bin/busybox"
ln -s busybox "$tmp/bin/sh"
install -m 755 "$lab_dir/guest/init" "$tmp/init"
for m in "${mods[@]}"; do
	name=${m##*/}
	case "$name" in
	*.ko.xz) xz -dc "$m" >"$tmp/modules/${name%.xz}" ;;
	*.ko.zst) zstd -qdc "$m" >"$tmp/modules/${name%.zst}" ;;
	*.ko.gz) gzip -dc "$m" >"$tmp/modules/${name%.gz}" ;;
	*.ko) cp "$m" "$tmp/modules/$name" ;;
	*) die "unexpected module file $m" ;;
	esac
	name=${name%.xz}
	name=${name%.zst}
	name=${name%.gz}
	printf '%s\n' "$name" >>"$tmp/modules/order"
done
(cd "$tmp" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
log "initramfs for $ver: $(tr '\n' ' ' <"$tmp/modules/order")-> $out"
printf '%s\n' "$out"
