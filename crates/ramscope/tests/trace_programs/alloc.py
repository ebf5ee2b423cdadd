"""Known Python allocations for testing `ramscope trace`: every one sits on a line marked with a
SITE comment, and sites.rs (in ../trace_support) lists what a correct tracer finds at each.
Tests find line numbers by reading this file, so lines may move freely.

    python3 alloc.py        prints fixed lines, exits 0

Processes: this one (with a thread), a multiprocessing child started with the spawn context (a
fresh interpreter that imports this file), an os.fork() child, and a subprocess.run child.
"""
import mmap
import multiprocessing
import os
import subprocess
import sys
import threading
from multiprocessing import shared_memory

MiB = 1 << 20
held = []


def make_buffer(n):
    return bytearray(n)  # SITE:py_make_buffer


def spawn_child():
    buf = bytearray(24 * MiB)  # SITE:py_spawn_child_24m
    held.append(buf)


def thread_main():
    held.append(bytearray(10 * MiB))  # SITE:py_thread_10m


# What the subprocess.run child executes: its allocation is at line 2 of "<string>".
SUBPROCESS_CODE = "import sys\nbuf = bytearray(20 * 2**20)\nsys.exit(0 if len(buf) else 1)\n"


def main():
    held.append(bytearray(64 * MiB))  # SITE:py_bytearray_64m

    try:
        import numpy
    except ImportError:
        numpy = None
    if numpy is not None:
        # calloc'd and never written: mapped but not resident.
        held.append(numpy.zeros((1024, 1024, 8)))  # SITE:py_numpy_zeros_64m

    held.append([(i, str(i)) for i in range(100_000)])  # SITE:py_small_objects

    shm = shared_memory.SharedMemory(create=True, size=8 * MiB)  # SITE:py_shared_memory_8m
    shm.buf[: 2 * MiB] = b"\x01" * (2 * MiB)
    # The name goes now; the mapping stays until the interpreter finalises the object.
    shm.unlink()

    anon = mmap.mmap(-1, 16 * MiB)  # SITE:py_mmap_16m
    anon.write(b"\x01" * MiB)

    held.append(make_buffer(32 * MiB))  # SITE:py_make_buffer_32m
    held.append(make_buffer(48 * MiB))  # SITE:py_make_buffer_48m

    child = multiprocessing.get_context("spawn").Process(target=spawn_child)
    child.start()
    child.join()
    assert child.exitcode == 0, child.exitcode

    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        buf = bytearray(12 * MiB)  # SITE:py_fork_child_12m
        # As multiprocessing's fork children end: without running exit handlers.
        os._exit(0 if len(buf) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status

    subprocess.run([sys.executable, "-c", SUBPROCESS_CODE], check=True)  # SITE:py_subprocess

    t = threading.Thread(target=thread_main)
    t.start()
    t.join()

    held.extend([shm, anon])
    print("alloc.py: done")


if __name__ == "__main__":
    main()
