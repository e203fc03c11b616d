# SPDX-License-Identifier: BSD-2-Clause
"""A test client of primd speaking broker/proto.h directly (no libsysv).

Used by tests/check_broker.sh:
  client.py SOCK req OP TYPE [key=K] [id=I] [flags=F] [nsems=N]
                                    [uid=U] [gid=G] [mode=M] [qbytes=Q]
      one request; prints "err=NAME id=I shmid=S access=A max=M" (exit 0)
  client.py SOCK fuzz N      N malformed datagrams, then a HELLO
  client.py SOCK hold SECONDS             HELLO, then stay connected
OP is a name (HELLO GET OPEN SET RMID INFO STAT_INDEX LIST) or a number;
TYPE is sem, msg or a number. Numbers may be octal (0o600) or hex.
Operations on the objects themselves are in prim_helper.c.
"""
import errno
import os
import random
import socket
import struct
import sys
import time

MAGIC = 0x444D5250
VERSION = 2
OPS = {"HELLO": 1, "GET": 2, "OPEN": 3, "SET": 4, "RMID": 5, "INFO": 6,
       "STAT_INDEX": 7, "LIST": 8, "SEMOP": 9, "SEMCTL": 10, "MSGSND": 11,
       "MSGRCV": 12, "REPORT": 13, "REAPED": 14}
TYPES = {"sem": 1, "msg": 2}
REQ = struct.Struct("<IHHIHHiiiiIIIIQ")
# struct primd_rep: header, struct primd_info, struct primd_stat
REP = struct.Struct("<IHHIiiiIIQII8I4IQQii" "5Iiqq2I3Q2i2q")
assert REQ.size == 56 and REP.size == 216
seqno = 0


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    return s


def request(s, op, typ=0, key=0, id=0, flags=0, nsems=0, uid=0, gid=0,
            mode=0, qbytes=0, magic=MAGIC, version=VERSION, pad=0, pad2=0):
    global seqno
    seqno += 1
    s.send(REQ.pack(magic, version, op, seqno, typ, pad, key, id, flags,
                    nsems, uid, gid, mode, pad2, qbytes))
    return reply(s, seqno)


def reply(s, want_seq=None):
    data = s.recv(4096)
    if len(data) == 0:
        return None
    if len(data) != REP.size:
        raise SystemExit("reply of %d bytes" % len(data))
    f = REP.unpack(data)
    if f[0] != MAGIC or (want_seq is not None and f[3] != want_seq):
        raise SystemExit("bad reply header %r" % (f[:4],))
    return {"op": f[2], "err": f[4], "id": f[5], "shmid": f[6],
            "access": f[7], "seg_size": f[9], "flags": f[10],
            "info": f[12:19], "usage": f[20:23], "msgs": f[24],
            "bytes": f[25], "max_index": f[26]}


def errname(e):
    return errno.errorcode.get(e, str(e)) if e else "0"


def num(v):
    return int(v, 0)


def main(argv):
    path, cmd, args = argv[1], argv[2], argv[3:]
    if cmd == "req":
        op = OPS.get(args[0]) or num(args[0])
        typ = TYPES.get(args[1])
        typ = typ if typ is not None else num(args[1])
        kw = {k: num(v) for k, v in (a.split("=", 1) for a in args[2:])}
        s = connect(path)
        r = request(s, op, typ, **kw)
        if r is None:
            print("closed")
            return 0
        print("err=%s id=%d shmid=%d access=%d max=%d" %
              (errname(r["err"]), r["id"], r["shmid"], r["access"],
               r["max_index"]))
        if op in (1, 6):
            print("limits=%s usage=%s msgs=%d bytes=%d" %
                  (list(r["info"]), list(r["usage"]), r["msgs"], r["bytes"]))
        return 0
    if cmd == "fuzz":
        rnd = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
        errs = {}
        for i in range(num(args[0])):
            s = connect(path)
            kind = i % 6
            if kind == 0:      # random bytes, random length
                data = bytes(rnd.getrandbits(8)
                             for _ in range(rnd.randrange(1, 300)))
            elif kind == 1:    # truncated valid header
                data = REQ.pack(MAGIC, VERSION, 2, i, 1, 0, 5, 0, 0o1000,
                                1, 0, 0, 0, 0, 0)[:rnd.randrange(1, 56)]
            elif kind == 2:    # oversized
                data = REQ.pack(MAGIC, VERSION, 1, i, 0, 0, 0, 0, 0, 0, 0,
                                0, 0, 0, 0) + b"x" * rnd.randrange(1, 5000)
            elif kind == 3:    # right size, random fields
                data = bytes(rnd.getrandbits(8) for _ in range(56))
            elif kind == 4:    # right header, random body
                data = REQ.pack(MAGIC, VERSION, rnd.randrange(0, 15), i,
                                rnd.randrange(0, 4), rnd.choice([0, 0, 1]),
                                rnd.randrange(-3, 3),
                                rnd.randrange(-2**31, 2**31),
                                rnd.randrange(-2**31, 2**31),
                                rnd.randrange(-2**31, 2**31),
                                rnd.getrandbits(32), rnd.getrandbits(32),
                                rnd.getrandbits(32), rnd.choice([0, 0, 7]),
                                rnd.getrandbits(64))
            else:              # bad magic / version
                data = REQ.pack(MAGIC ^ rnd.choice([1, 0]), rnd.choice(
                    [0, 2, 0xffff]), 1, i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            try:
                s.send(data)
                r = reply(s)
                e = "closed" if r is None else errname(r["err"])
            except (ConnectionError, socket.timeout) as ex:
                e = type(ex).__name__
            errs[e] = errs.get(e, 0) + 1
            s.close()
        s = connect(path)
        r = request(s, OPS["HELLO"])
        if r is None or r["err"] != 0:
            raise SystemExit("broker does not answer HELLO after fuzzing")
        print("fuzz", " ".join("%s=%d" % kv for kv in sorted(errs.items())))
        return 0
    if cmd == "hold":
        s = connect(path)
        request(s, OPS["HELLO"])
        time.sleep(float(args[0]))
        return 0
    raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
