#!/usr/bin/env python3
"""The PyTorch side of the matmul comparison in issue 2 / chapter 2.

Measures f32 matrix products (n×n · n×n) with PyTorch's CPU backend at 1 and
2 threads, best of 5 rounds of 10, and prints GFLOP/s (2·n³ per product).
Run it on the same machine, in the same minutes, as
`cargo bench -p engine --bench kernels -- matmul`, so the ratio means
something: run it with a Python that has torch (a developer's venv; CI never
runs this).
"""
import time

import torch


def gflops(n, rounds=5, reps=10):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(5):
        a @ b
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * n**3 / best / 1e9


def main():
    for threads in (2, 1):
        torch.set_num_threads(threads)
        for n in (768, 1024):
            print(f"torch matmul f32 {n}^3, {threads} thread(s): {gflops(n):.1f} GFLOP/s")


if __name__ == "__main__":
    main()
