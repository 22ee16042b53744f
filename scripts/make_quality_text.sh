#!/usr/bin/env bash
# Make book/data/kjv-ruth-jonah.txt, the public-domain text chapter 10's
# program scores perplexity on: the books of Ruth and Jonah in the King James
# Version (1611; its copyright has long expired), taken from Debian's
# `bible-kjv` and `bible-kjv-text` packages. The packages' own `bible`
# program prints the verses; this script drops the verse references and
# keeps one verse per line. About 19.6 KB, 5,019 SmolLM2 tokens (the final newline is one).
#
#   scripts/make_quality_text.sh
#
# It needs a Debian or Ubuntu machine (apt-get download fetches the two
# packages into a temporary folder; nothing is installed). Re-running it
# writes the same bytes; the file is committed, so the book and its readers
# never need to run it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/book/data/kjv-ruth-jonah.txt"
tmp="$(mktemp -d)"
chmod 755 "$tmp" # readable by apt's download user
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
apt-get download bible-kjv bible-kjv-text >/dev/null
for deb in bible-kjv_*.deb bible-kjv-text_*.deb; do
    dpkg -x "$deb" x
done
verses() {
    # -f: one verse per line, "Ruth1:1 Now it came to pass ..."
    ./x/usr/bin/bible -p x/usr/lib -f "$1" | sed -E 's/^[A-Za-z]+[0-9]+:[0-9]+ //'
}
{
    verses "Ruth1:1-4:22"
    verses "Jonah1:1-4:11"
} >"$out"
echo "wrote $out ($(wc -c <"$out") bytes, $(wc -l <"$out") verses)"
