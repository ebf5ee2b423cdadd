"""Benchmark workload: call-heavy pure Python, few allocations (small ints stay cached, the
frames are reused). Measures what a tracer costs a program that hardly allocates.

    python3 calls.py [CALLS]       default 60000000
"""
import sys


def step(x):
    return (x * 7 + 3) & 0xFFF


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000_000
    x = 1
    for _ in range(n):
        x = step(x)
    print(f"calls: {n} calls, result {x}")


if __name__ == "__main__":
    main()
