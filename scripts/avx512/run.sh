#!/bin/bash
# Run a static x86_64 Linux binary inside Bochs (tigerlake: AVX-512 + VNNI + VL)
# and return its console output and exit code.
#
# usage: run.sh [-t TIMEOUT_S] [-m MEGS] [-e KEY=VAL]... [-v] [-k] /path/to/static-binary [args...]
#   -t  timeout in seconds for the whole boot+run (default $BOCHS_TIMEOUT or 1800)
#   -m  guest memory in MB (default $BOCHS_MEGS or 1024)
#   -e  extra environment variable for the program (repeatable)
#   -v  print the full serial log (kernel messages) to stderr afterwards
#   -k  keep the work directory (printed to stderr)
# env: BOCHS_TIMEOUT, BOCHS_MEGS, BOCHS_CPU (tigerlake; corei7_icelake_u also works),
#      BOCHS_CPUS (1; 2 works but boots ~4x slower), BOCHS_IPS (100000000),
#      BOCHS_NICE (10), BOCHS_VERBOSE=1, BOCHS_KEEP=1, BOCHS_CMDLINE_EXTRA
# The program runs as /bin/t (cwd /, stdin /dev/null, stdout+stderr both on the serial
# console) under a tiny init that mounts /proc /sys /dev /dev/shm and a tmpfs /tmp and sets
# PATH, HOME=/root, TMPDIR=/tmp, TERM=dumb. Needs one-time setup.sh beside this script (kernel, isolinux, init),
# which keeps its downloads in $BOCHS_WORK (default $TMPDIR/infer-bochs).
# exit status: the program's exit status (128+N if killed by signal N);
#   124 on timeout, 125 on harness/boot failure (no EXIT= line seen).
set -u
B=${BOCHS_WORK:-${TMPDIR:-/tmp}/infer-bochs}
HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=${BOCHS_TIMEOUT:-1800}
MEGS=${BOCHS_MEGS:-1024}
CPU=${BOCHS_CPU:-tigerlake}
IPS=${BOCHS_IPS:-100000000}
NICE=${BOCHS_NICE:-10}
VERBOSE=${BOCHS_VERBOSE:-0}
KEEP=${BOCHS_KEEP:-0}
ENVS=()
while getopts "t:m:e:vkh" o; do
  case $o in
    t) TIMEOUT=$OPTARG;; m) MEGS=$OPTARG;; e) ENVS+=("$OPTARG");;
    v) VERBOSE=1;; k) KEEP=1;;
    *) sed -n '2,19p' "$0" >&2; exit 2;;
  esac
done
shift $((OPTIND-1))
[ $# -ge 1 ] || { sed -n '2,19p' "$0" >&2; exit 2; }
BIN=$1; shift
[ -f "$BIN" ] || { echo "run.sh: no such file: $BIN" >&2; exit 2; }
for f in vmlinuz isolinux.bin ldlinux.c32 init; do
  [ -f "$B/base/$f" ] || { echo "run.sh: $B/base/$f missing; run $HERE/setup.sh" >&2; exit 2; }
done

mkdir -p "$B/runs"
W=$(mktemp -d "$B/runs/run.XXXXXX")
PG=""
killgroup() {  # stop script(1)+bochs (own process group, started with setsid)
  { if [ -n "$PG" ] && kill -0 "$PG"; then
      kill -TERM -- "-$PG"
      for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$PG" || break; sleep 0.2; done
      kill -KILL -- "-$PG"
    fi
    [ -n "$PG" ] && wait "$PG"; } 2>/dev/null
  PG=""
}
cleanup() {
  killgroup
  if [ "$KEEP" = 1 ]; then echo "run.sh: work dir kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- initramfs -------------------------------------------------------------
R=$W/root
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/iso/isolinux"
cp "$B/base/init" "$R/init"
cp "$BIN" "$R/bin/t"; chmod 755 "$R/bin/t"
: > "$R/args"; for a in "$@"; do printf '%s\0' "$a" >> "$R/args"; done
: > "$R/env";  for a in ${ENVS[@]+"${ENVS[@]}"}; do printf '%s\0' "$a" >> "$R/env"; done
ISO=$W/iso; mkdir -p "$ISO/isolinux"
( cd "$R" && find . -path ./iso -prune -o -print | cpio -o -H newc --quiet ) > "$ISO/initrd" || { echo "run.sh: cpio failed" >&2; exit 125; }
rm -rf "$R/iso"

# --- boot ISO (isolinux) ---------------------------------------------------
# clearcpuid works around Bochs 2.7 / Linux 6.1 issues:
#  pku:          Bochs reports PKRU in XCR0 mask but CPUID.0xD.9 is empty -> kernel disables XSAVE (no AVX at all)
#  xsaves,xsavec: Bochs reports a wrong compacted XSAVE size -> kernel disables XSAVE
#  fsrm:         Bochs clears MISC_ENABLE.fast-strings -> kernel drops ERMS; FSRM-without-ERMS memmove bug crashes 6.1
CMDLINE="console=ttyS0,115200 quiet loglevel=3 mitigations=off tsc=reliable panic=0 8250.nr_uarts=1 clearcpuid=pku,xsaves,xsavec,fsrm cryptomgr.notests nokaslr ${BOCHS_CMDLINE_EXTRA:-}"
cp "$B/base/isolinux.bin" "$B/base/ldlinux.c32" "$ISO/isolinux/"
ln -s "$B/base/vmlinuz" "$ISO/vmlinuz"
cat > "$ISO/isolinux/isolinux.cfg" <<EOT
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd
  APPEND $CMDLINE
EOT
xorriso -as mkisofs -quiet -follow-links -o "$W/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table "$ISO" >"$W/xorriso.log" 2>&1 \
  || { cat "$W/xorriso.log" >&2; echo "run.sh: xorriso failed" >&2; exit 125; }
rm -rf "$ISO"

# --- bochs -----------------------------------------------------------------
cat > "$W/bochsrc" <<EOT
plugin_ctrl: unmapped=1, biosdev=1, speaker=0, extfpuirq=1, parallel=0, serial=1, gameport=0, e1000=0, ne2k=0, sb16=0, es1370=0
config_interface: textconfig
display_library: term
memory: guest=$MEGS, host=$MEGS
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
cpu: model=$CPU, count=${BOCHS_CPUS:-1}, ips=$IPS, reset_on_triple_fault=0, ignore_bad_msrs=1
pci: enabled=1, chipset=i440fx
clock: sync=none, time0=local
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$W/boot.iso, status=inserted
boot: cdrom
floppy_bootsig_check: disabled=1
com1: enabled=1, mode=file, dev=$W/serial.out
mouse: enabled=0
log: $W/bochs.log
panic: action=fatal
error: action=ignore
info: action=ignore
debug: action=ignore
EOT
printf 'c\n' > "$W/dbg.rc"   # Debian's bochs-bin has the debugger built in: just continue
: > "$W/serial.out"

T0=$(date +%s.%N)
# term GUI needs a tty: give it a pty via script(1); setsid so we can kill the whole group
TERM=xterm setsid script -qfec "exec nice -n $NICE bochs-bin -q -f $W/bochsrc -rc $W/dbg.rc" /dev/null \
  </dev/null >"$W/bochs.stdout" 2>&1 &
PG=$!

status=""
deadline=$(( $(date +%s) + TIMEOUT ))
exit_seen=0
while :; do
  if ! kill -0 "$PG" 2>/dev/null; then status=exited; break; fi
  if [ $exit_seen = 0 ] && grep -aq '^EXIT=[0-9]*' "$W/serial.out"; then
    exit_seen=$(date +%s)   # give the guest a few seconds to power off by itself
  fi
  if [ $exit_seen != 0 ] && [ $(( $(date +%s) - exit_seen )) -ge 8 ]; then status=killed_after_exit; break; fi
  if grep -aq 'Kernel panic - not syncing' "$W/serial.out"; then sleep 2; status=panic; break; fi
  if [ "$(date +%s)" -ge $deadline ]; then status=timeout; break; fi
  sleep 0.5
done
killgroup
T1=$(date +%s.%N)

SER=$W/serial.out
if [ "$VERBOSE" = 1 ]; then
  { echo "===== full serial log ====="; tr -d '\r' < "$SER"; echo "===== end serial log ====="; } >&2
fi
# program output: the bytes between the BEGIN and END marker lines (the console is in raw
# mode while the program runs; init prints a newline before the END marker, so exactly one
# trailing empty line is dropped)
awk '/^@@BOCHS-HARNESS-END/{if (have && prev != "") print prev; exit}
  p{if (have) print prev; prev=$0; have=1} /^@@BOCHS-HARNESS-BEGIN\r?$/{p=1}' "$SER"
code=$(sed -n 's/^EXIT=\([0-9][0-9]*\)\r\{0,1\}$/\1/p' "$SER" | tail -1)
info=$(sed -n 's/^@@BOCHS-HARNESS cpus=\([0-9]*\).*/cpus=\1/p' "$SER" | head -1)
gs=$(sed -n 's/^@@BOCHS-HARNESS-END guest_seconds=\([0-9.]*\).*/\1/p' "$SER" | head -1)
printf 'run.sh: bochs %s after %.1fs wall (%s%s)\n' "$status" "$(echo "$T1 - $T0" | bc)" "${info:-no init banner}" "${gs:+, program ran $gs guest-s}" >&2
if [ -z "$code" ]; then
  if [ "$VERBOSE" != 1 ]; then
    echo "run.sh: no EXIT= line; last serial output (rerun with -v for all):" >&2
    tr -d '\r' < "$SER" | tail -40 >&2
  fi
  grep -a -E 'PANIC|>>' "$W/bochs.log" 2>/dev/null | tail -5 >&2
  [ "$status" = timeout ] && exit 124
  exit 125
fi
exit "$code"
