"""Benchmark workload: allocation-heavy Python. Builds and drops many 1-64 KiB bytes and
bytearray objects (each one a malloc and a free) and churns lists and dicts of small objects.
Deterministic: prints a checksum of what it computed.

    python3 churn.py [ROUNDS]      default 150
"""
import random
import sys

KiB = 1024


def round_of(rng, n):
    total = 0
    keep = []
    for i in range(n):
        size = rng.randrange(1 * KiB, 64 * KiB)
        if i % 2:
            b = bytearray(size)
            b[-1] = i & 0xFF
        else:
            b = bytes(size)
        total += len(b) + b[-1]
        keep.append(b)
        if len(keep) > 64:
            del keep[rng.randrange(len(keep))]
    table = {}
    for i in range(n):
        table[i] = [i, str(i), (i, i + 1)]
        if i % 3 == 0:
            table.pop(i // 2, None)
    return total + len(table)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    rng = random.Random(1234)
    checksum = 0
    for _ in range(rounds):
        checksum = (checksum * 31 + round_of(rng, 20_000)) % (1 << 61)
    print(f"churn: {rounds} rounds, checksum {checksum}")


if __name__ == "__main__":
    main()
