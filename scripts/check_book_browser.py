#!/usr/bin/env python3
"""Load every chapter of the built book in headless Chromium and check it.

Usage: scripts/check_book_browser.py BOOK_DIR MATHJAX_DIR OUT_DIR
(scripts/check-book-browser.sh builds the book, installs what is missing and
calls this.)

The book is copied to OUT_DIR/site with MathJax served from the same origin
(the pages load MathJax 2 from a CDN, which a test machine may not reach), and
served by Python's http.server on a free loopback port. For each chapter:

- every <img> in the built HTML names a file that exists, and an SVG one
  parses as XML with an <svg> root;
- in the browser, a small harness page opens the chapter in a same-origin
  iframe, waits for MathJax to finish, and reports every image's naturalWidth
  (must be > 0), the number of formulas MathJax typeset, and any MathJax error
  (`MathJax_Error`, `merror`, `noError`, `mjx-merror`, an unknown macro shown
  as its name, "Math input error", "Math Processing Error"). Chromium runs with --dump-dom after a virtual-time
  budget; the harness writes its result into the DOM as JSON.
- every formula delimiter in the page's text (\\( and \\[ outside code) was
  typeset: the count MathJax reports must be at least the count in the HTML.

Then it saves screenshots of two chapters and prints their paths.
Exits 1 with the reasons if any check fails.
"""
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET

CDN_MATHJAX = re.compile(r'<script[^>]*src="https://[^"]*/MathJax\.js\?config=([^"]+)"[^>]*></script>')
SCREENSHOTS = [
    ("ch07-sampling.html", "ch07-sampling.png"),
    ("ch08-penalties-and-stopping.html", "ch08-penalties-and-stopping.png"),
]

HARNESS = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>check</title></head>
<body><pre id="result">pending</pre>
<script>
const page = new URLSearchParams(location.search).get("page");
const out = document.getElementById("result");
const frame = document.createElement("iframe");
frame.style.width = "1200px";
frame.style.height = "1600px";
function report(r) { out.textContent = "RESULT " + JSON.stringify(r); }
function inspect() {
  const doc = frame.contentDocument;
  const win = frame.contentWindow;
  const imgs = Array.from(doc.images).map(i => ({
    src: i.getAttribute("src"), complete: i.complete, width: i.naturalWidth }));
  // MathJax 2 marks a processing error MathJax_Error, a TeX error merror, or
  // (with the noErrors extension of the default configuration) noError, which
  // shows the TeX source; noUndefined shows an unknown macro as red text.
  const errors = Array.from(doc.querySelectorAll(
      ".MathJax_Error, .merror, .noError, mjx-merror, [data-mjx-error]"))
    .map(e => "in " + (e.getAttribute("title") || e.textContent || "").slice(0, 200));
  for (const m of doc.querySelectorAll(".MathJax, .MathJax_Display")) {
    const shown = m.textContent || "";
    if (shown.includes("\\")) errors.push("unknown macro in: " + shown.slice(0, 200));
  }
  const text = doc.body ? doc.body.innerText : "";
  for (const msg of ["Math input error", "Math Processing Error"]) {
    if (text.includes(msg)) errors.push(msg);
  }
  const typeset = doc.querySelectorAll('script[type^="math/tex"]').length;
  report({ page, mathjax: !!win.MathJax, typeset, imgs, errors });
}
frame.onload = function () {
  const win = frame.contentWindow;
  let tries = 0;
  (function wait() {
    if (win.MathJax && win.MathJax.Hub && win.MathJax.Hub.Queue) {
      win.MathJax.Hub.Queue(inspect);
    } else if (tries++ < 100) {
      setTimeout(wait, 50);
    } else {
      inspect();
    }
  })();
};
frame.src = page;
document.body.appendChild(frame);
</script></body></html>
"""


class Images(html.parser.HTMLParser):
    """<img src> values, and formula delimiters in text outside code."""

    def __init__(self):
        super().__init__()
        self.srcs = []
        self.formulas = 0
        self.code = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs += [v for k, v in attrs if k == "src" and v]
        if tag in ("code", "pre", "script", "style"):
            self.code += 1

    def handle_endtag(self, tag):
        if tag in ("code", "pre", "script", "style") and self.code:
            self.code -= 1

    def handle_data(self, data):
        if not self.code:
            self.formulas += data.count("\\(") + data.count("\\[")


def chapters(book):
    """Every chapter page, in the order of the book's table of contents."""
    names = []
    toc = os.path.join(book, "toc.html")
    text = open(toc, encoding="utf-8").read() if os.path.exists(toc) else ""
    for href in re.findall(r'href="([^"#]+\.html)"', text):
        if href not in names and os.path.exists(os.path.join(book, href)):
            names.append(href)
    if not names:
        names = sorted(n for n in os.listdir(book) if re.match(r"(ch\d|introduction).*\.html$", n))
    return names


def static_image_checks(site, page):
    problems = []
    parser = Images()
    parser.feed(open(os.path.join(site, page), encoding="utf-8").read())
    for src in parser.srcs:
        if re.match(r"[a-z]+:", src):
            problems.append(f"{page}: image {src} is not part of the book")
            continue
        path = os.path.normpath(os.path.join(site, os.path.dirname(page), src.split("#")[0]))
        if not os.path.isfile(path):
            problems.append(f"{page}: image {src} has no file")
        elif path.endswith(".svg"):
            try:
                root = ET.parse(path).getroot()
            except ET.ParseError as e:
                problems.append(f"{page}: image {src} is not well-formed XML: {e}")
                continue
            if not root.tag.endswith("svg"):
                problems.append(f"{page}: image {src} has root <{root.tag}>, not <svg>")
    return problems, len(parser.srcs), parser.formulas


def chromium(args, profile):
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={profile}", "--virtual-time-budget=10000"] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def main(book, mathjax, out):
    site = os.path.join(out, "site")
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(book, site)
    os.symlink(os.path.abspath(mathjax), os.path.join(site, "mathjax-local"))
    for name in os.listdir(site):
        if name.endswith(".html"):
            path = os.path.join(site, name)
            text = open(path, encoding="utf-8").read()
            text = CDN_MATHJAX.sub(r'<script async src="/mathjax-local/MathJax.js?config=\1"></script>', text)
            open(path, "w", encoding="utf-8").write(text)
    with open(os.path.join(site, "__check.html"), "w", encoding="utf-8") as f:
        f.write(HARNESS)

    handler = functools.partial(QuietHandler, directory=site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    problems = []
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        pages = chapters(site)
        for page in pages:
            static, n_img, n_formulas = static_image_checks(site, page)
            problems += static
            run = chromium(["--dump-dom", f"{base}__check.html?page={page}"], profile)
            m = re.search(r"RESULT (\{.*\})", run.stdout)
            if not m:
                problems.append(f"{page}: the harness reported nothing (chromium exit {run.returncode})")
                continue
            r = json.loads(html.unescape(m.group(1)))
            for img in r["imgs"]:
                if not img["complete"] or img["width"] <= 0:
                    problems.append(f"{page}: image {img['src']} did not load (naturalWidth {img['width']})")
            for e in r["errors"]:
                problems.append(f"{page}: MathJax error: {e}")
            if n_formulas and not r["mathjax"]:
                problems.append(f"{page}: {n_formulas} formulas but MathJax did not load")
            elif r["typeset"] < n_formulas:
                problems.append(f"{page}: {n_formulas} formula delimiters, {r['typeset']} typeset")
            loaded = sum(1 for img in r["imgs"] if img["complete"] and img["width"] > 0)
            print(f"{page}: {loaded} of {len(r['imgs'])} images loaded ({n_img} in the HTML), "
                  f"{r['typeset']} formulas typeset, {len(r['errors'])} MathJax errors")
        shots = os.path.join(out, "..", "book-screenshots")
        os.makedirs(shots, exist_ok=True)
        for page, name in SCREENSHOTS:
            path = os.path.abspath(os.path.join(shots, name))
            if os.path.exists(path):
                os.remove(path)
            chromium([f"--screenshot={path}", "--window-size=1200,1600", base + page], profile)
            if os.path.isfile(path) and os.path.getsize(path) > 0:
                print(f"screenshot: {os.path.normpath(path)}")
            else:
                problems.append(f"no screenshot of {page}")
    finally:
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)

    for p in problems:
        print("FAIL", p)
    print(f"browser check: {len(pages)} pages, {len(problems)} problems")
    return 1 if problems else 0


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
