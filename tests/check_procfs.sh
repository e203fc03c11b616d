#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# /proc/sysvipc and the stock ipcs, differential against the kernel (issue
# 10 item 7). In a fresh IPC namespace, `conform/sysvipc make KEY` makes
# semaphore sets and message queues with known keys and modes (messages
# sent and received, one semop) and one shm segment; then the listing:
# /proc/sysvipc/sem, msg and shm (cat: open; checked to be exactly in the
# kernel's column layout), `ipcs -s -q -m` with -p, -t, -c and -u (util-
# linux: fopen; -u asks SEM_INFO, MSG_INFO and SHM_INFO), and /proc/sysvipc/sem and msg as read by uid 65534 (the
# kernel lists every object to everyone). Ids, pids and times are
# normalised (ids to their order, a non-zero pid to P, a time to T or 0).
# Three runs: the kernel; libsysv preloaded with a private broker; and
# `primctl run`. The outputs must be identical, so prim's objects are
# listed and the broker's backing segments and registry are not.
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
KEY=0x50524d40
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_procfs: FAIL: $*" >&2
	exit 1
}

wait_sock() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || return 1
		sleep 0.1
	done
}

# norm_proc: the /proc/sysvipc lines, normalised; a line not in the
# kernel's layout (ipc/{sem,msg,shm}.c sysvipc_*_proc_show) is marked.
norm_proc() {
	awk '
	function t(v) { return v == "0" ? "0" : "T" }
	function p(v) { return v == "0" ? "0" : "P" }
	function id(v) { if (!(v in m)) m[v] = "ID" (++n); return m[v] }
	NR == 1 { print; next }
	NF == 10 {
		f = sprintf("%10s %10s  %4s %10s %5s %5s %5s %5s %10s %10s",
		    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		print (f == $0 ? "" : "LAYOUT ") $1, id($2), $3, $4, $5, $6, \
		    $7, $8, t($9), t($10)
		next
	}
	NF == 14 {
		f = sprintf("%10s %10s  %4s  %10s %10s %5s %5s %5s %5s %5s %5s %10s %10s %10s",
		    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		print (f == $0 ? "" : "LAYOUT ") $1, id($2), $3, $4, $5, \
		    p($6), p($7), $8, $9, $10, $11, t($12), t($13), t($14)
		next
	}
	NF == 16 {
		print $1, id($2), $3, $4, p($5), p($6), $7, $8, $9, $10, \
		    $11, t($12), t($13), t($14), $15, $16
		next
	}
	{ print "UNEXPECTED " $0 }'
}

# norm_ipcs: ipcs output, normalised.
norm_ipcs() {
	sed -E 's/[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [0-9]{4}/DATE/g
		s/[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8}/DATE/g' |
		awk '
	function id(v) { if (!((s, v) in m)) m[s, v] = "ID" (++n[s]);
		return m[s, v] }
	/^------/ { sec = $0; s = $2; print; next }
	NF == 0 || $1 == "key" || $1 ~ /^(msqid|semid|shmid)$/ { print; next }
	sec ~ /Status|Limits/ { print; next }
	sec ~ /PIDs/ { $1 = id($1); for (i = 3; i <= 4; i++)
		if ($i != "0") $i = "P"; print; next }
	sec ~ /Times|Creators/ { $1 = id($1); print; next }
	{ $2 = id($2); print }'
}

listing() {
	for f in sem msg shm; do
		echo "== /proc/sysvipc/$f"
		cat /proc/sysvipc/$f | norm_proc
	done
	echo "== ipcs"
	ipcs -s -q -m | norm_ipcs
	for o in -p -t -c; do
		echo "== ipcs -q -s -m $o"
		ipcs -q -s -m $o | norm_ipcs
	done
	echo "== ipcs -u"
	ipcs -u | norm_ipcs
}

# The bad-pointer case of conform/sysvipc, unless a sanitizer's runtime is
# preloaded (make check-asan): its open interceptor crashes on it.
[ -n "${PRIM_TEST_PRELOAD:-}" ] || export PRIM_PROCFS_BADPTR=1

if [ "${1:-}" = --inner ]; then
	mode=$2
	out=$3
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_procfs_ns.XXXXXX")
	bpid=
	cleanup() {
		if [ -n "$bpid" ]; then
			kill "$bpid" 2>/dev/null || :
			wait "$bpid" 2>/dev/null || :
		fi
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	export B
	case $mode in
	kernel)
		{
			"$B/conform/sysvipc" make "$KEY"
			listing
		} >"$out" 2>&1
		if [ -n "$NOBODY_OK" ]; then
			$NOBODY sh -c 'cat /proc/sysvipc/sem /proc/sysvipc/msg' |
				norm_proc >"$out.nobody" 2>&1
		fi
		;;
	preload)
		chmod 0755 "$dir"
		$W "$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
		bpid=$!
		wait_sock "$dir/sock" || {
			cat "$dir/broker.log" >&2
			echo "check_procfs: the broker made no socket" >&2
			exit 1
		}
		chmod 0666 "$dir/sock"
		PRIM_BROKER_SOCK=$dir/sock
		LD_PRELOAD=$B/libsysv.so$POST
		export PRIM_BROKER_SOCK LD_PRELOAD
		{
			"$B/conform/sysvipc" make "$KEY"
			listing
		} >"$out" 2>&1
		if [ -n "$NOBODY_OK" ]; then
			$NOBODY sh -c 'cat /proc/sysvipc/sem /proc/sysvipc/msg' |
				norm_proc >"$out.nobody" 2>&1
		fi
		;;
	run)
		export PRIM_IDLE_EXIT=1
		unset PRIM_BROKER_SOCK
		# The functions, for the shell primctl runs.
		sed -n '/^norm_proc()/,/^}/p; /^norm_ipcs()/,/^}/p; /^listing()/,/^}/p' \
			"$0" >"$dir/fns.sh"
		$RUNPRE "$B/primctl" run -s "$dir/sock" -- sh -c \
			". '$dir/fns.sh'; '$B/conform/sysvipc' make $KEY && listing" \
			>"$out" 2>&1
		;;
	esac
	exit 0
fi

[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
command -v ipcs >/dev/null 2>&1 ||
	fail "no ipcs (util-linux; make deps installs it)"
for f in "$B/libsysv.so" "$B/primd" "$B/primctl" "$B/conform/sysvipc"; do
	[ -e "$f" ] || fail "$f not built"
done
# The reading as uid 65534 is part of the check, not an extra: without
# root (or in a user namespace where 65534 is not mapped) it fails.
[ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1 &&
	$NOBODY true 2>/dev/null ||
	fail "needs root and setpriv to read the files as uid 65534 (uid $(id -u))"
case "$IPCNS" in
*-U* | *--user*) fail "IPCNS='$IPCNS' is a user namespace where uid 65534 is not mapped" ;;
esac
NOBODY_OK=1
export NOBODY_OK

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_procfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

for mode in kernel preload run; do
	timeout 120 $IPCNS sh "$0" --inner "$mode" "$tmp/$mode.out" ||
		fail "$mode run failed"
done
grep -q '^1347571009 ID1 600 3 ' "$tmp/kernel.out" || {
	cat "$tmp/kernel.out" >&2
	fail "the kernel run did not list its sets: the test is broken"
}
grep -q '^0x50524d54 ID1 root 600 4096 ' "$tmp/kernel.out" ||
	fail "the kernel run did not list its shm segment: the test is broken"
! grep -q 'LAYOUT\|UNEXPECTED' "$tmp/kernel.out" ||
	fail "the kernel's own lines are not in the layout the test expects"
st=0
for mode in preload run; do
	if diff -u "$tmp/kernel.out" "$tmp/$mode.out" >"$tmp/diff"; then
		echo "check_procfs: $mode: ok ($(grep -c . "$tmp/kernel.out")" \
			"lines identical to the kernel)"
	else
		echo "check_procfs: $mode differs from the kernel (- kernel, + $mode):" >&2
		cat "$tmp/diff" >&2
		st=1
	fi
done
if [ -n "$NOBODY_OK" ]; then
	grep -q '^1347571009 ID1 600 3 ' "$tmp/kernel.out.nobody" ||
		fail "uid 65534 saw no 0600 set on the kernel: the test is broken"
	if diff -u "$tmp/kernel.out.nobody" "$tmp/preload.out.nobody" \
		>"$tmp/diff"; then
		echo "check_procfs: uid 65534: ok (every object listed, as on" \
			"the kernel)"
	else
		echo "check_procfs: uid 65534 sees otherwise (- kernel, + preload):" >&2
		cat "$tmp/diff" >&2
		st=1
	fi
else
	echo "check_procfs: the uid 65534 part skipped (not root, or a user namespace)"
fi
[ "$st" -eq 0 ] || fail "/proc/sysvipc or ipcs differ from the kernel"
