#!/usr/bin/env bash
# Developer check of the built book in a real browser: every chapter page is
# loaded in headless Chromium, every image must load (naturalWidth > 0; SVGs
# must also parse as XML), and every formula must be typeset by MathJax with
# no error. Saves screenshots of two chapters to target/book-screenshots/ and
# prints their paths.
#
#   scripts/check-book-browser.sh
#
# Not in CI: installing Chromium there takes too long for what it adds to
# `mdbook build` and scripts/check-links.py, which CI runs. Installs Chromium
# and MathJax 2 (Debian's chromium and libjs-mathjax) when they are missing;
# the pages load MathJax from a CDN, which a test machine may not reach, so the
# check serves the local copy in its place (see scripts/check_book_browser.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mathjax=/usr/share/javascript/mathjax
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f "$mathjax/MathJax.js" ] || missing+=(libjs-mathjax)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} ..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mdbook build book
python3 scripts/check_book_browser.py book/book "$mathjax" target/book-browser
