#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The permission matrix with real uids (tests/conform/perm_matrix.c),
# differential: creator after IPC_SET, owner, group member, a member of
# gid 0, other; every mode of a list that includes the write-only ones;
# every call that needs R, W or ownership; and a raw shmat, read-only and
# read-write, of the memory behind each object, which under prim is its
# backing segment and on the kernel a kernel shm segment with the same
# ipc_perm. Once on the kernel, once with libsysv preloaded and a private
# root broker, each in its own IPC namespace; the outputs must be
# identical, line by line.
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
KEY=0x504d0000
P=$B/conform/perm_matrix
# make check-asan, check-tsan (scripts/sanitize.sh): the sanitizer's
# runtime is preloaded after libsysv.
POST=${PRIM_TEST_PRELOAD:+:$PRIM_TEST_PRELOAD}
# make check-valgrind (scripts/sanitize.sh) runs primd under PRIMD_WRAPPER.
W=${PRIMD_WRAPPER:-}

fail() {
	echo "check_perm_matrix: FAIL: $*" >&2
	exit 1
}

as() {
	case $1 in
	creator) echo "setpriv --reuid=61011 --regid=61011 --clear-groups" ;;
	owner) echo "setpriv --reuid=61012 --regid=61012 --clear-groups" ;;
	member) echo "setpriv --reuid=61013 --regid=61013 --groups=61020" ;;
	wheel) echo "setpriv --reuid=61014 --regid=61014 --groups=0" ;;
	other) echo "setpriv --reuid=65534 --regid=65534 --clear-groups" ;;
	esac
}

if [ "${1:-}" = --inner ]; then
	mode=$2 out=$3
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_pmx.XXXXXX")
	chmod 0755 "$dir"
	bpid=
	trap '[ -n "$bpid" ] && kill "$bpid" 2>/dev/null; rm -rf "$dir"' EXIT
	map=
	if [ "$mode" = prim ]; then
		$W "$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
		bpid=$!
		i=0
		until [ -S "$dir/sock" ]; do
			i=$((i + 1))
			[ $i -le 100 ] || fail "the broker made no socket"
			sleep 0.05
		done
		chmod 0666 "$dir/sock"
		PRIM_BROKER_SOCK=$dir/sock
		LD_PRELOAD=$B/libsysv.so$POST
		export PRIM_BROKER_SOCK LD_PRELOAD
	fi
	$(as creator) "$P" make "$KEY" >"$out" 2>&1 || fail "$mode: make: $(cat "$out")"
	if [ "$mode" = prim ]; then
		map=$dir/map
		"$P" ids "$KEY" | while read -r i s q; do
			echo "$i $(env -u LD_PRELOAD "$B/hostile/segof" "$dir/sock" sem "$s")" \
				"$(env -u LD_PRELOAD "$B/hostile/segof" "$dir/sock" msg "$q")"
		done >"$map"
		[ -s "$map" ] || fail "no backing segments found"
	fi
	for a in creator owner member wheel other; do
		timeout 120 $(as "$a") "$P" try "$KEY" "$a" $map >>"$out" 2>&1 ||
			fail "$mode: $a: $(tail -3 "$out")"
	done
	"$P" clean "$KEY" >>"$out" 2>&1 || fail "$mode: clean: $(tail -1 "$out")"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || fail "needs root, to be five users (uid $(id -u))"
case "$IPCNS" in
"") fail "no way to unshare an IPC namespace (IPCNS is empty)" ;;
*-U* | *--user*) fail "IPCNS='$IPCNS' is a user namespace: the test's uids are not mapped" ;;
esac
[ -x "$P" ] && [ -x "$B/hostile/segof" ] || fail "$P or segof not built"
$(as other) test -x "$P" || fail "uid 65534 cannot run $P"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_pmx_out.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for mode in kernel prim; do
	$IPCNS sh "$0" --inner "$mode" "$tmp/$mode.out" || fail "$mode run failed"
done
grep -q ' EACCES' "$tmp/kernel.out" && grep -q 'rw ok' "$tmp/kernel.out" ||
	fail "the kernel run saw no EACCES or no attach: the test is broken"
if ! diff -u "$tmp/kernel.out" "$tmp/prim.out" >"$tmp/diff"; then
	echo "check_perm_matrix: prim differs from the kernel (- kernel, + prim):" >&2
	cat "$tmp/diff" >&2
	fail "permission matrix differs"
fi
echo "check_perm_matrix: ok ($(grep -c . "$tmp/kernel.out") lines identical" \
	"to the kernel: 5 users, $(grep -c ' semget ' "$tmp/kernel.out") object rows)"
