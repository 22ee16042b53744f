#!/usr/bin/env python3
"""Load test for `infer serve`: concurrent streaming clients on loopback.

Starts `target/release/infer serve` on a free 127.0.0.1 port (or uses
--url, which must be a loopback address), then for each client count runs
that many clients for a fixed time; each client sends streaming requests
back to back (chat completions by default: the instruct model answers at
length, so the steps are mostly decoding, as in `infer bench-batch`;
`--endpoint completions` sends the prompt as plain text, which this model
often ends within a few tokens, so the steps carry many new prompts).
The clients are `target/release/infer bench-serve`, all on one thread:
on a two-core machine, Python threads reading every token took about 7%
of a core at eight clients, time the server's step waits for.
Prints, per count: aggregate generated tokens per second (the server's own
`usage` counts), time to first token (p50) and the gap between a
request's text chunks (inter-token latency, p50 and p99), the clients' own CPU
time as a share of one core (on a small machine they run on the server's
cores), the server's tokens per forward step over the count's run (`batch`:
how many sequences its steps carried on average, from `/health`), the
time of one empty hand-off to a thread pool measured by the clients just
before (`hand µs`: on a virtual machine whose two cores are sometimes near,
sharing a cache, and sometimes far apart, it says which, and a batched step
slows by about a quarter when far), and at
the end how many prompt tokens the server read and how many its prompt
cache saved (every request sends the same prompt unless --vary starts each
with its own number). With --soak SECONDS it then runs 16 clients for that
long and reports the server's resident memory over time; when
the script started the server, the soak fails if the memory at the end exceeds
the memory after warm-up (the first fifth) by more than 10% or 16 MB, whichever
is larger. Every accepted request must complete; the script exits non-zero
otherwise. A refused client (503) waits a little before it asks again, longer
each time up to a second. It stops by itself: the time per count and the soak
time bound it (at most 64 clients, at most 1800 s per count and for the soak).

With --rounds N the sweep runs N times over, and a summary gives each
count's medians, its speed-up over one client taken within each round
(so a machine whose memory bandwidth drifts from minute to minute, as
shared virtual machines do, compares counts measured minutes apart no
more than it must), and the range of that speed-up.

Standard library only.  Example:
    cargo build --release -p infer
    python3 scripts/load-test.py --clients 1,2,4,8,16 --seconds 20 --soak 180
"""

import argparse
import http.client
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse


# Limits on the arguments, so that a run stays a test and not a siege.
MAX_CLIENTS = 64
MAX_SECONDS = 1800.0
# The soak fails when the end's RSS exceeds the RSS after warm-up by more than
# this fraction of it or this many MB, whichever is larger.
RSS_GROWTH_FRACTION = 0.10
RSS_GROWTH_MIN_MB = 16.0


def run_level(exe, host, port, clients, seconds, max_tokens, prompt, endpoint, vary=False):
    """`clients` streaming clients for `seconds`: `infer bench-serve`, which
    runs them all on one thread (a token costs them one read and one small
    JSON parse, so on a small machine they take little of the cores the
    server runs on). Its report, and its CPU time as a share of one core."""
    url_host = f"[{host}]" if ":" in host else host
    cmd = [exe, "bench-serve", "--url", f"http://{url_host}:{port}", "--clients", str(clients),
           "--seconds", str(seconds), "--max-tokens", str(max_tokens), "--prompt", prompt,
           "--endpoint", endpoint] + (["--vary"] if vary else [])
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 700)
    cpu1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - wall0
    if done.returncode != 0:
        sys.exit(f"infer bench-serve failed: {done.stderr.strip()}")
    r = json.loads(done.stdout)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    r["client_cpu_pct"] = 100.0 * cpu / wall if wall > 0 else 0.0
    return r


def mean_batch(before, after):
    """Tokens the server generated per forward step between two `/health`
    answers: how many sequences its steps carried on average (None for a
    server whose `/health` does not count steps)."""
    keys = ("steps", "generated_tokens")
    if not all(k in h for h in (before, after) for k in keys):
        return None
    steps = after["steps"] - before["steps"]
    return (after["generated_tokens"] - before["generated_tokens"]) / steps if steps > 0 else None


def get_json(host, port, path):
    """A GET request's JSON body ({} if it fails)."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", path)
        body = conn.getresponse().read()
        conn.close()
        return json.loads(body)
    except (OSError, ValueError):
        return {}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_growth(rss):
    """Memory after warm-up (the first fifth of the samples), at the end, the
    growth between them and the most it may grow, in MB (None without samples)."""
    if not rss:
        return None
    warm = (rss[len(rss) // 5:] or rss)[0]
    end = rss[-1]
    return warm, end, end - warm, max(RSS_GROWTH_FRACTION * warm, RSS_GROWTH_MIN_MB)


def client_counts(ap, text):
    """--clients as a list of counts, each in 1..=MAX_CLIENTS (else a usage error)."""
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        ap.error(f"--clients must be comma-separated integers, got {text!r}")
    bad = [n for n in counts if not 1 <= n <= MAX_CLIENTS]
    if bad:
        ap.error(f"--clients: each count must be in 1..{MAX_CLIENTS}, got {bad}")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (loopback only); default: start one")
    ap.add_argument("--clients", default="1,2,4,8,16")
    ap.add_argument("--seconds", type=float, default=20.0, help="time per client count")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt", default="Write a short story about a lighthouse keeper.")
    ap.add_argument("--vary", action="store_true",
                    help="start every request's text with its own number (no shared prompt beyond the template)")
    ap.add_argument("--endpoint", choices=["chat", "completions"], default="chat",
                    help="chat: the prompt is a user message (long answers); "
                         "completions: plain text to continue")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the sweep this many times and summarise with medians")
    ap.add_argument("--soak", type=float, default=0.0, help="seconds of 16 clients afterwards")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--serve-args", default="--max-batch 16 --ctx 512",
                    help="arguments for the server this script starts")
    a = ap.parse_args()
    counts = client_counts(ap, a.clients)
    if not 0 < a.seconds <= MAX_SECONDS:
        ap.error(f"--seconds must be in (0, {MAX_SECONDS:.0f}], got {a.seconds}")
    if not 0 <= a.soak <= MAX_SECONDS:
        ap.error(f"--soak must be in [0, {MAX_SECONDS:.0f}] seconds, got {a.soak}")

    server = None
    exe = os.path.join(os.path.dirname(__file__), "..", "target", "release", "infer")
    if a.url:
        u = urlparse(a.url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("load tests run on loopback only")
        host, port, pid = u.hostname, u.port, None
    else:
        server = subprocess.Popen([exe, "serve", "--port", "0", *a.serve_args.split()],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = server.stdout.readline()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            server.kill()
            sys.exit(f"the server did not start: {line!r}")
        host, port, pid = m.group(1), int(m.group(2)), server.pid
    results = {"levels": [], "soak": None}
    failed = False
    leak = None
    try:
        rounds = max(1, a.rounds)
        print(f"{'round':>5} {'clients':>7} {'tok/s':>8} {'x one':>6} {'TTFT ms':>8} {'ITL p50':>8} "
              f"{'ITL p99':>8} {'x p99':>6} {'reqs':>5} {'503':>4} {'cli %':>5} {'batch':>5} "
              f"{'hand µs':>7}")
        for k in range(rounds):
            base = None
            for n in counts:
                before = get_json(host, port, "/health")
                r = run_level(exe, host, port, n, a.seconds, a.max_tokens, a.prompt, a.endpoint, a.vary)
                r["mean_batch"] = mean_batch(before, get_json(host, port, "/health"))
                base = base or r
                # Against the first count of the same round.
                r["round"] = k + 1
                r["x_one"] = r["tok_per_s"] / max(base["tok_per_s"], 1e-9)
                r["x_p99"] = r["itl_ms_p99"] / max(base["itl_ms_p99"], 1e-9)
                results["levels"].append(r)
                print(f"{k + 1:>5} {n:>7} {r['tok_per_s']:>8.1f} {r['x_one']:>6.2f} "
                      f"{r['ttft_ms_p50']:>8.1f} {r['itl_ms_p50']:>8.1f} {r['itl_ms_p99']:>8.1f} "
                      f"{r['x_p99']:>6.2f} {r['requests']:>5} {r['refused']:>4} "
                      f"{r['client_cpu_pct']:>5.1f} "
                      f"{'-' if r['mean_batch'] is None else format(r['mean_batch'], '5.2f'):>5} "
                      f"{'-' if r.get('hand_off_us') is None else format(r['hand_off_us'], '7.2f'):>7}",
                      flush=True)
                failed |= r["incomplete"] > 0
        if rounds > 1:
            print(f"medians over {rounds} rounds (x one: within each round, its range after it):")
            print(f"{'clients':>7} {'tok/s':>8} {'x one':>6} {'range':>11} {'TTFT ms':>8} {'ITL p50':>8} "
                  f"{'ITL p99':>8} {'x p99':>6}")
            summary = []
            for n in counts:
                rs = [r for r in results["levels"] if r["clients"] == n]
                med = {key: statistics.median(r[key] for r in rs) for key in
                       ("tok_per_s", "x_one", "ttft_ms_p50", "itl_ms_p50", "itl_ms_p99", "x_p99")}
                lo, hi = min(r["x_one"] for r in rs), max(r["x_one"] for r in rs)
                summary.append({"clients": n, **med, "x_one_min": lo, "x_one_max": hi})
                print(f"{n:>7} {med['tok_per_s']:>8.1f} {med['x_one']:>6.2f} {lo:>5.2f}-{hi:<5.2f} "
                      f"{med['ttft_ms_p50']:>8.1f} {med['itl_ms_p50']:>8.1f} {med['itl_ms_p99']:>8.1f} "
                      f"{med['x_p99']:>6.2f}", flush=True)
            results["medians"] = summary
        if a.soak > 0:
            samples, stop = [], threading.Event()

            def sample():
                while not stop.is_set():
                    if pid:
                        samples.append((time.perf_counter(), rss_mb(pid)))
                    stop.wait(2.0)

            sampler = threading.Thread(target=sample)
            sampler.start()
            r = run_level(exe, host, port, 16, a.soak, a.max_tokens, a.prompt, a.endpoint, a.vary)
            stop.set()
            sampler.join()
            rss = [m for _, m in samples]
            # Memory after warm-up (the first fifth) against the end.
            warm = rss[len(rss) // 5:] or rss
            soak = {**r, "seconds": a.soak, "rss_mb_start": warm[0] if warm else None,
                    "rss_mb_end": rss[-1] if rss else None, "rss_mb_max": max(rss) if rss else None}
            results["soak"] = soak
            print(f"soak: 16 clients for {a.soak:.0f} s: {r['requests']} requests, "
                  f"{r['incomplete']} incomplete, {r['refused']} refused, {r['tok_per_s']:.1f} tok/s; "
                  f"RSS after warm-up {soak['rss_mb_start']} MB, end {soak['rss_mb_end']} MB, "
                  f"max {soak['rss_mb_max']} MB")
            failed |= r["incomplete"] > 0
            growth = rss_growth(rss)
            if growth is not None:
                _, _, grew, limit = growth
                soak["rss_mb_growth"], soak["rss_mb_growth_limit"] = grew, limit
                if grew > limit:
                    leak = (f"the server's memory grew by {grew:.1f} MB during the soak "
                            f"(from {growth[0]:.1f} MB after warm-up to {growth[1]:.1f} MB), more "
                            f"than the {limit:.1f} MB allowed ({RSS_GROWTH_FRACTION:.0%} or "
                            f"{RSS_GROWTH_MIN_MB:.0f} MB, whichever is larger)")
        health = get_json(host, port, "/health")
        if "cached_prompt_tokens" in health:
            results["prompt_tokens"] = {"read": health["prompt_tokens"],
                                        "cached": health["cached_prompt_tokens"]}
            print(f"prompt tokens: {health['prompt_tokens']} read, "
                  f"{health['cached_prompt_tokens']} taken from the server's prompt cache")
    finally:
        if server:
            server.kill()
            server.wait()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    problems = (["some accepted requests did not complete"] if failed else []) + ([leak] if leak else [])
    if problems:
        sys.exit("; ".join(problems))


if __name__ == "__main__":
    main()
