#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""A producer/consumer pipeline over System V IPC with the sysv_ipc module
(Debian's python3-sysv-ipc), as an unmodified program would be written.

2 producers send N messages (payloads 1..N, type 1) to one queue; 2
consumers receive with type -2 (data before the type-2 stop messages), add
the payloads and, under a mutex semaphore (SEM_UNDO), increment a counter
kept in another semaphore. Results come back as type-3 messages. Prints one
result line (compared by tests/check_scripts.sh) and one timing line.
    python3 pipeline.py [N]
"""
import os
import sys
import time

try:
    import sysv_ipc
except ImportError:
    sys.stderr.write("pipeline.py: the sysv_ipc module is missing "
                     "(apt-get install python3-sysv-ipc)\n")
    sys.exit(3)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
NPROD = 2
NCONS = 2


def backend(qid):
    """The kernel lists its own queues; under libsysv it has none of ours.

    Another spelling of the path: libsysv answers /proc/sysvipc/msg itself
    with its own queues (libsysv(7)), this one is the kernel's."""
    try:
        with open("/proc/self/root/proc/sysvipc/msg") as f:
            for line in f:
                c = line.split()
                if len(c) > 1 and c[1] == str(qid):
                    return "kernel"
    except OSError:
        return "unknown"
    return "prim"


q = sysv_ipc.MessageQueue(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, 0o600)
mutex = sysv_ipc.Semaphore(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, 0o600, 1)
counter = sysv_ipc.Semaphore(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, 0o600, 0)
mutex.undo = True
be = backend(q.id)

t0 = time.monotonic()
prods = []
for p in range(NPROD):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for i in range(p + 1, N + 1, NPROD):
                q.send(str(i).encode(), True, 1)
            code = 0
        finally:
            os._exit(code)
    prods.append(pid)
cons = []
for c in range(NCONS):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            total = n = 0
            while True:
                msg, mtype = q.receive(True, -2)
                if mtype == 2:
                    break
                total += int(msg)
                n += 1
                mutex.acquire()
                counter.value = counter.value + 1
                mutex.release()
            q.send(("%d %d" % (total, n)).encode(), True, 3)
            code = 0
        finally:
            os._exit(code)
    cons.append(pid)
for pid in prods:
    _, st = os.waitpid(pid, 0)
    if st != 0:
        sys.exit("producer failed")
for _ in range(NCONS):
    q.send(b"stop", True, 2)
for pid in cons:
    _, st = os.waitpid(pid, 0)
    if st != 0:
        sys.exit("consumer failed")
total = n = 0
for _ in range(NCONS):
    msg, _t = q.receive(False, 3)
    s1, n1 = msg.split()
    total += int(s1)
    n += int(n1)
dt = time.monotonic() - t0
cval = counter.value
mval = mutex.value
q.remove()
mutex.remove()
counter.remove()
ok = n == N and total == N * (N + 1) // 2 and cval == N and mval == 1
print("python pipeline: N=%d count=%d sum=%d counter=%d mutex=%d %s"
      % (N, n, total, cval, mval, "ok" if ok else "WRONG"))
print("python timing: backend=%s %.3f s, %.0f msgs/s" % (be, dt, N / dt))
sys.exit(0 if ok else 1)
