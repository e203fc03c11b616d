# SPDX-License-Identifier: BSD-2-Clause
"""The seed inputs of tests/fuzz/fuzz_broker.c, written into a directory:

  python3 tests/fuzz/mkcorpus_broker.py DIR

Each seed is a short story of requests in the harness's input encoding
(see build() and action() in fuzz_broker.c): objects made by one user and
asked for, opened, changed, used and removed by others with and without
the right, the operations the broker does for callers that may not map an
object, scribbles between requests, and malformed headers. libFuzzer
mutates from there; the stories only make the interesting states near.
"""
import os
import struct
import sys

# Callers (index into creds[] of fuzz_broker.c).
ROOT, SYSADMIN, IPCOWNER, ALICE, BOB, CAROL, DAVE, ALICE2 = range(8)
# Ops (proto.h).
HELLO, GET, OPEN, SET, RMID, INFO, STAT_INDEX, LIST, SEMOP, SEMCTL, \
    MSGSND, MSGRCV, REPORT = range(1, 14)
SEM, MSG = 0, 3                     # type selectors
# ids_pool[] of fuzz_broker.c
UIDS = {0: 0, 61001: 1, 61002: 2, 61003: 3, 61004: 4, 61010: 5, 61011: 6,
        61100: 7, 61101: 8, 61104: 9, 65534: 10, -1: 11}
IPC_CREAT, IPC_EXCL, IPC_NOWAIT = 0o1000, 0o2000, 0o4000
NOWAIT, UNDO = 0x10, 0x20           # sembuf flag bits of the encoding


def req(caller, op, typ=SEM, obj=0, key=0, flags=0, nsems=0, uid=0, gid=0,
        mode=0, qb=0, trailer=b"\x00", act=b"\x00", pid=0, index=None):
    """One request: obj is the k-th object of the type in the model;
    index (for STAT_INDEX and LIST) an index instead."""
    target = (0x0f | index << 4) if index is not None else obj << 4
    opb = op - 1 if op <= 13 else 240 + op     # 240 + op: any op number
    return (bytes([caller | pid << 3, opb, typ, target, key & 7])
            + struct.pack("<H", flags)
            + bytes([nsems, UIDS[uid], UIDS[gid]])
            + struct.pack("<H", mode) + bytes([qb]) + trailer + act)


def sembufs(*ops):
    """A SEMOP trailer: (num, op, flags) triples."""
    b = bytearray([0])              # selector: nsems of the request
    for num, op, flg in ops:
        b += bytes([num, (op + 3) | flg])   # low 3 bits: op + 3
    return bytes(b)


def msgsnd(mtype, length):
    return bytes([mtype + 1, length])


def msgrcv(msgtyp, msgsz):
    return bytes([msgtyp + 4, msgsz])


def scribble(obj, *words):
    """Action: write words (how, at, value) into the k-th object."""
    b = bytearray([7, obj, len(words) - 1])
    for how, at, v in words:
        b += bytes([how]) + struct.pack("<HQ", at, v)
    return bytes(b)


REAP = bytes([6, 0])                # the first live pid died
OWNERS = bytes([5])
RESTART = bytes([0x1c])             # the broker dies, a new one adopts

seeds = {
    # A private set: the owner, the group, others, CAP_SYS_ADMIN.
    "set_perms": [
        req(ALICE, GET, SEM, key=1, flags=IPC_CREAT | 0o640, nsems=3),
        req(BOB, GET, SEM, key=1, flags=0o400),
        req(BOB, GET, SEM, key=1, flags=0o200),
        req(DAVE, GET, SEM, key=1, flags=0o400),
        req(BOB, OPEN, SEM),
        req(DAVE, OPEN, SEM),
        req(BOB, SET, SEM, uid=61002, gid=61002, mode=0o666),
        req(BOB, RMID, SEM),
        req(SYSADMIN, SET, SEM, uid=61004, gid=61100, mode=0o604),
        req(DAVE, OPEN, SEM),
        req(ALICE, OPEN, SEM),
        req(ALICE, GET, SEM, key=1, flags=IPC_CREAT | IPC_EXCL | 0o600,
            nsems=3),
        req(IPCOWNER, OPEN, SEM),
        req(ALICE, RMID, SEM),
        req(ALICE, OPEN, SEM),
    ],
    # A queue: group read, the proxied msgrcv and msgsnd, qbytes.
    "queue_perms": [
        req(CAROL, GET, MSG, key=2, flags=IPC_CREAT | 0o640),
        req(CAROL, MSGSND, MSG, trailer=msgsnd(1, 10), flags=IPC_NOWAIT),
        req(ALICE, MSGRCV, MSG, trailer=msgrcv(0, 50), flags=IPC_NOWAIT),
        req(ALICE, MSGSND, MSG, trailer=msgsnd(2, 5)),
        req(DAVE, MSGRCV, MSG, trailer=msgrcv(0, 50)),
        req(CAROL, SET, MSG, uid=61003, gid=61100, mode=0o620, qb=6),
        req(CAROL, SET, MSG, uid=61003, gid=61100, mode=0o620, qb=3),
        req(BOB, MSGSND, MSG, trailer=msgsnd(3, 20)),
        req(BOB, MSGRCV, MSG, trailer=msgrcv(-3, 90)),
        req(ROOT, SET, MSG, uid=61003, gid=61100, mode=0o622, qb=5),
        req(DAVE, MSGSND, MSG, trailer=msgsnd(1, 96)),
        req(DAVE, STAT_INDEX, MSG, index=0),
        req(DAVE, STAT_INDEX, MSG, index=0, flags=1),
        req(CAROL, STAT_INDEX, MSG, index=0),
        req(ALICE, INFO, MSG, flags=2),
        req(DAVE, RMID, MSG),
        req(CAROL, RMID, MSG),
    ],
    # The semop proxy: read-only (wait for zero) and write-only callers,
    # SEM_UNDO for a live pid, then that pid's death.
    "semop_proxy": [
        req(ALICE, GET, SEM, key=0, flags=0o644, nsems=2),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((0, 0, NOWAIT))),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((0, 1, NOWAIT))),
        req(ALICE, SEMCTL, SEM, flags=0, nsems=1, mode=3),
        req(IPCOWNER, SEMOP, SEM, nsems=2,
            trailer=sembufs((1, -1, NOWAIT | UNDO), (0, 1, UNDO))),
        req(ALICE, SET, SEM, uid=61001, gid=61001, mode=0o622),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((1, 1, UNDO)),
            act=REAP),
        req(BOB, SEMCTL, SEM, flags=1, trailer=bytes([0, 2, 3])),
        req(DAVE, SEMCTL, SEM, flags=0, nsems=0, mode=1),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((5, 1, NOWAIT))),
        req(DAVE, SEMOP, SEM, nsems=1, trailer=sembufs((0, 0, 0)),
            act=OWNERS),
        req(ALICE, REPORT, SEM),
    ],
    # Hostile memory: scribbles on a set and a queue between requests.
    "scribbles": [
        req(ALICE, GET, SEM, key=3, flags=IPC_CREAT | 0o666, nsems=4),
        req(ALICE, GET, MSG, key=3, flags=IPC_CREAT | 0o666),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((0, 1, NOWAIT)),
            act=scribble(0, (1, 0, 0xffffffffffffffff), (5, 8, 3))),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((0, -1, NOWAIT))),
        req(BOB, MSGSND, MSG, trailer=msgsnd(1, 30),
            act=scribble(1, (2, 0, 0x7fff), (1, 3, 1), (3, 100, 0))),
        req(BOB, MSGRCV, MSG, trailer=msgrcv(0, 90)),
        req(BOB, REPORT, MSG),
        req(BOB, REPORT, SEM, act=scribble(0, (0, 0, 0x4f4d5250))),
        req(BOB, STAT_INDEX, SEM, index=0),
        req(BOB, LIST, MSG, index=0),
        req(BOB, INFO, SEM, flags=1),
        req(DAVE, SET, SEM, uid=61004, gid=61004, mode=0o777),
        req(ALICE, RMID, SEM),
        req(ALICE, RMID, MSG),
    ],
    # A broker restarted over scribbled segments adopts every object.
    "restart": [
        req(ALICE, GET, SEM, key=4, flags=IPC_CREAT | 0o660, nsems=2),
        req(BOB, GET, MSG, key=4, flags=IPC_CREAT | 0o606),
        req(ALICE, SEMOP, SEM, nsems=1, trailer=sembufs((1, 2, UNDO)),
            act=scribble(0, (1, 1, 0xffff), (2, 40, 0))),
        req(BOB, MSGSND, MSG, trailer=msgsnd(1, 40),
            act=scribble(1, (1, 2, 0x10000), (3, 9, 7))),
        req(ROOT, INFO, MSG, flags=2, act=RESTART),
        req(CAROL, OPEN, SEM),
        req(DAVE, MSGRCV, MSG, trailer=msgrcv(0, 90)),
        req(ALICE, SET, SEM, uid=61003, gid=61100, mode=0o640, act=RESTART),
        req(CAROL, RMID, SEM),
        req(BOB, STAT_INDEX, MSG, index=0),
    ],
    # A writer marks a set removed in its memory (the state word of its
    # libprim header, object word 3), then the broker restarts: the new
    # one must keep the set (damaged), not remove it.
    "restart_marked": [
        req(ALICE, GET, SEM, key=5, flags=IPC_CREAT | 0o666, nsems=1),
        req(BOB, SEMOP, SEM, nsems=1, trailer=sembufs((0, 1, NOWAIT)),
            act=scribble(0, (1, 3, 2))),
        req(BOB, OPEN, SEM, act=RESTART),
        req(ALICE, GET, SEM, key=5),
    ],
    # Limits: more sets than semmni, more semaphores than semmns.
    "limits": [req(ALICE if k % 2 else BOB, GET, SEM, key=0,
                   flags=0o600, nsems=8) for k in range(10)]
    + [req(ROOT, INFO, SEM, flags=1), req(ALICE, LIST, SEM, index=3)],
    # Malformed headers (the raw bit: magic, version, pads).
    "malformed": [
        req(ALICE | 0x80, HELLO, SEM, trailer=b"\x01\x05" + b"\x00"),
        req(ALICE | 0x80, GET, SEM, key=1, flags=IPC_CREAT | 0o600,
            nsems=1, trailer=b"\x04\x07\x00"),
        req(ALICE | 0x80, OPEN, SEM, trailer=b"\x08\x00"),
        req(ALICE, OPEN, SEM, trailer=b"\xe0\x10" + b"\x41" * 16),
        req(ALICE, 15, 7),
    ],
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, reqs in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"".join(reqs))
