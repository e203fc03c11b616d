#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Permission checks with a real second user, differential against the
# kernel. In a fresh IPC namespace, root runs `conform perms-owner KEY`
# (semaphore sets and queues with modes 0600 0640 0644 0666 0602, one with
# its group and one with its owner changed to nobody), then uid/gid 65534
# (setpriv, no supplementary groups) runs `conform perms-other KEY`: *get
# with and without mode bits, semop needing R or W, GETVAL/GETALL/SETVAL/
# SETALL, IPC_STAT, IPC_SET, IPC_RMID, msgsnd, msgrcv, *_STAT vs
# *_STAT_ANY, and the order of EINVAL/EFBIG/ERANGE/EEXIST against EACCES.
# Then root removes what is left. Once against the kernel, once with
# libsysv preloaded and a private broker whose socket nobody may reach;
# the two outputs must be identical.
#
# Needs root (to become nobody); under a user namespace IPCNS, or when not
# root, it says so and skips.
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
KEY=0x50524d00
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
# make check-asan, check-tsan (scripts/sanitize.sh): the sanitizer's
# runtime is preloaded after libsysv.
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_perms: FAIL: $*" >&2
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

if [ "${1:-}" = --inner ]; then
	mode=$2
	out=$3
	prog=$B/conform/conform
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_perms_ns.XXXXXX")
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
	if [ "$mode" = preload ]; then
		chmod 0755 "$dir"
		$W "$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
		bpid=$!
		wait_sock "$dir/sock" || {
			cat "$dir/broker.log" >&2
			echo "check_perms: the broker made no socket" >&2
			exit 1
		}
		# nobody must be able to connect.
		chmod 0666 "$dir/sock"
		PRIM_BROKER_SOCK=$dir/sock
		LD_PRELOAD=$B/libsysv.so$POST
		export PRIM_BROKER_SOCK LD_PRELOAD
	fi
	{
		timeout 60 "$prog" perms-owner "$KEY"
		timeout 60 $NOBODY "$prog" perms-other "$KEY"
		timeout 60 "$prog" perms-clean "$KEY"
	} >"$out" 2>&1
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "check_perms: SKIP: needs root to become uid 65534 (uid $(id -u))"
	exit 0
fi
case "$IPCNS" in
*-U* | *--user*)
	echo "check_perms: SKIP: IPCNS='$IPCNS' is a user namespace where" \
		"uid 65534 is not mapped"
	exit 0
	;;
esac
[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
command -v setpriv >/dev/null 2>&1 || fail "setpriv missing (util-linux)"
[ -x "$B/conform/conform" ] || fail "$B/conform/conform not built"
for f in "$B/libsysv.so" "$B/primd"; do
	[ -e "$f" ] || fail "$f not built"
done
$NOBODY test -x "$B/conform/conform" ||
	fail "uid 65534 cannot run $B/conform/conform (directory permissions)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_perms.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

for mode in kernel preload; do
	$IPCNS sh "$0" --inner "$mode" "$tmp/$mode.out" ||
		fail "$mode run failed"
	echo "check_perms: $mode: $(grep -c . "$tmp/$mode.out") lines"
done
grep -q '^perms-clean: ' "$tmp/kernel.out" || {
	cat "$tmp/kernel.out" >&2
	fail "the kernel run did not finish: the test is broken"
}
grep -q 'perms: euid=65534 egid=65534' "$tmp/kernel.out" ||
	fail "the second run was not uid 65534"
grep -q -- '-1 EACCES' "$tmp/kernel.out" ||
	fail "the kernel run saw no EACCES: the test is broken"
if diff -u "$tmp/kernel.out" "$tmp/preload.out" >"$tmp/diff"; then
	echo "check_perms: ok ($(grep -c . "$tmp/kernel.out") lines identical" \
		"to the kernel)"
else
	echo "check_perms: preload differs from the kernel (- kernel, + libsysv):" >&2
	cat "$tmp/diff" >&2
	fail "permission checks differ"
fi
