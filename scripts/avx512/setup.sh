#!/bin/bash
# One-time setup for run.sh: Debian packages (Bochs and its BIOS, isolinux,
# xorriso, cpio, bc), a Debian cloud kernel, and the guest's init, kept in
# $BOCHS_WORK (default $TMPDIR/infer-bochs).
set -euo pipefail
B=${BOCHS_WORK:-${TMPDIR:-/tmp}/infer-bochs}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$B/base" "$B/dl"
need=()
for p in bochs bochsbios vgabios isolinux syslinux-common xorriso cpio bc; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y --no-install-recommends "${need[@]}"; fi
if [ ! -f "$B/base/vmlinuz" ]; then
  cd "$B/dl"
  pkg=$(apt-cache search '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | awk '{print $1}' | sort -V | tail -1)
  ls ${pkg}_*.deb >/dev/null 2>&1 || apt-get download "$pkg"
  rm -rf "$B/kroot"; dpkg-deb -x ${pkg}_*.deb "$B/kroot"
  cp "$B"/kroot/boot/vmlinuz-* "$B/base/vmlinuz"
fi
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$B/base/"
gcc -static -O2 -Wall -o "$B/base/init" "$HERE/init.c"
echo "setup done: $(ls "$B/base")"
