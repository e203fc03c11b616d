#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Shrink a divergent difftest program to a minimal reproduction.

Given a mode and a seed on which the kernel and libsysv differ
(tests/check_difftest.sh --long names them), take the seed's step script
(difftest -p), then drop steps (halves, quarters, ... single steps), drop
semop operations and set arguments to 0 or 1, keeping each change only if
both sides, re-run in fresh IPC namespaces (check_difftest.sh --pair),
still differ twice in a row at a line of the same call (the kernel's line).
Prints the minimal step script, which `difftest -r FILE` replays, and both
sides' outputs of it.

Usage (from the top of the tree, as root, after make):
  python3 tests/difftest_shrink.py -m b -s 17 [-n 40] [-x FEATURES] [-o FILE]
  python3 tests/difftest_shrink.py -r SCRIPT [-x FEATURES]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.environ.get("B", os.path.join(TOP, "build"))
PROG = os.environ.get("DIFFTEST_PROG", os.path.join(B, "conform", "difftest"))
CHECK = os.path.join(TOP, "tests", "check_difftest.sh")

runs = 0


def first_diff(kout, pout):
    k = kout.splitlines()
    p = pout.splitlines()
    for i in range(max(len(k), len(p))):
        a = k[i] if i < len(k) else "(end of output)"
        b = p[i] if i < len(p) else "(end of output)"
        if a != b:
            return a, b
    return None


def call_of(line):
    """The call a line is about: its first word naming one."""
    m = re.search(r"\b(semget|semop|semtimedop|semctl|msgget|msgsnd|msgrcv|"
                  r"msgctl|spawn|reap|sig|end of output|TIMEOUT|DIED)\b",
                  line)
    return m.group(1) if m else line


def signature(d):
    """The call the kernel's differing line is about (prim's if the
    kernel's output ended there)."""
    return call_of(d[1] if d[0] == "(end of output)" else d[0])


def run_pair(lines, excl, tmp):
    """(kernel output, prim output, status) of a step script."""
    global runs
    runs += 1
    script = os.path.join(tmp, "script")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    args = ["sh", CHECK, "--pair", tmp, "-r", script]
    if excl:
        args += ["-x", excl]
    env = dict(os.environ, B=B)
    st = subprocess.run(args, cwd=TOP, env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode
    with open(os.path.join(tmp, "kernel.out"), errors="replace") as f:
        k = f.read()
    with open(os.path.join(tmp, "prim.out"), errors="replace") as f:
        p = f.read()
    return k, p, st


def divergent(lines, excl, tmp, want, tries=2):
    """Both sides differ at a line of the same calls, tries times in a
    row (a divergence that comes and goes is not shrunk to)."""
    for _ in range(tries):
        k, p, st = run_pair(lines, excl, tmp)
        if st != 1:
            return False
        d = first_diff(k, p)
        if d is None:
            return False
        if want is not None and signature(d) != want:
            return False
    return True


def shrink(lines, excl, tmp, want):
    head = [l for l in lines if l.startswith("mode")]
    steps = [l for l in lines if not l.startswith("mode")]
    # Drop chunks of steps, ddmin-like.
    n = 2
    while len(steps) >= 1:
        chunk = max(1, len(steps) // n)
        i = 0
        progress = False
        while i < len(steps):
            cand = steps[:i] + steps[i + chunk:]
            if cand and divergent(head + cand, excl, tmp, want):
                steps = cand
                progress = True
            else:
                i += chunk
        if not progress:
            if chunk == 1:
                break
            n *= 2
    # Simplify arguments: fewer semop operations, then zeros.
    changed = True
    while changed:
        changed = False
        for i, s in enumerate(steps):
            w = s.split()
            if w[1] == "semop" and len(w) > 8 and int(w[7]) > 1:
                v = w[:7] + [str(int(w[7]) - 1)] + w[8:]
                for j in range(int(w[7])):
                    cand = v[:8 + 3 * j] + v[11 + 3 * j:]
                    c = steps[:i] + [" ".join(cand)] + steps[i + 1:]
                    if divergent(head + c, excl, tmp, want):
                        steps = c
                        changed = True
                        break
                if changed:
                    break
            for j in range(3, len(w)):
                if w[j] in ("0", "1"):
                    continue
                for rep in ("0", "1"):
                    cand = w[:j] + [rep] + w[j + 1:]
                    c = steps[:i] + [" ".join(cand)] + steps[i + 1:]
                    if divergent(head + c, excl, tmp, want):
                        steps = c
                        w = cand
                        changed = True
                        break
    return head + steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", default="a")
    ap.add_argument("-s", type=int)
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("-x", default="")
    ap.add_argument("-r", help="a step script to shrink instead of a seed")
    ap.add_argument("-o", help="write the minimal script there")
    a = ap.parse_args()
    if a.r:
        with open(a.r) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
    elif a.s is not None:
        args = [PROG, "-p", "-m", a.m, "-s", str(a.s), "-n", str(a.n)]
        if a.x:
            args += ["-x", a.x]
        lines = subprocess.run(args, check=True, stdout=subprocess.PIPE,
                               text=True).stdout.splitlines()
    else:
        ap.error("-s SEED or -r SCRIPT")
    with tempfile.TemporaryDirectory(prefix="prim_shrink.") as tmp:
        k, p, st = run_pair(lines, a.x, tmp)
        d = first_diff(k, p) if st == 1 else None
        if d is None:
            print("difftest_shrink: not divergent (status %d)" % st)
            return 1
        want = signature(d)
        print("first difference:\n  - %s\n  + %s" % d)
        small = shrink(lines, a.x, tmp, want)
        k, p, st = run_pair(small, a.x, tmp)
        d = first_diff(k, p)
        print("minimal script (%d steps, %d runs; replay: difftest -r FILE"
              "%s):" % (len(small) - 1, runs, " -x " + a.x if a.x else ""))
        for l in small:
            print("  " + l)
        if d:
            print("first difference:\n  - %s\n  + %s" % d)
        print("kernel:")
        for l in k.splitlines():
            print("  " + l)
        print("prim:")
        for l in p.splitlines():
            print("  " + l)
        if a.o:
            with open(a.o, "w") as f:
                f.write("\n".join(small) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
