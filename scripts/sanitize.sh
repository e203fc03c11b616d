#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# make check-asan, check-tsan, check-valgrind (GNUmakefile, README):
#   asan      everything built with AddressSanitizer and UndefinedBehavior-
#             Sanitizer in build-asan/, then the whole check-run suite;
#   tsan      the same with ThreadSanitizer in build-tsan/;
#   valgrind  the normal build (build/), the whole check-run suite with
#             every primd the system checks start under memcheck, then the
#             unit tests under memcheck.
# Run from the top of the tree: MAKE=make CC=cc sh scripts/sanitize.sh TOOL
# SAN_TARGETS (default check-run) names other targets of GNUmakefile to run
# so, while working on one part (e.g. SAN_TARGETS=syscheck).
#
# Every report goes to a file in $B/san-logs (the sanitizers' log_path,
# valgrind's --log-file), so that none is lost in a process whose exit
# status a check does not look at (a broker stopped at clean-up, a program
# under primctl run, an interpreter): the run passes only if check-run
# passes and that directory holds no report. The directory is 1777: the
# checks run programs as other users too.
#
# The hooks the system checks honour (tests/check_*.sh; all empty in make
# check):
#   CFLAGS             the programs the checks compile themselves get it, as
#                      the build does (they link the sanitized libprim.a);
#   PRIM_TEST_PRELOAD  the sanitizer's runtime, preloaded after libsysv
#                      wherever a check preloads libsysv into a program
#                      that is not sanitizer-built (perl, python3, php, sh
#                      and what sh runs, the conformance programs), and
#                      given to primctl run, which does the same. After:
#                      the sanitizers have their own msgsnd, msgrcv and
#                      sigaction, which would come before libsysv's (they
#                      check a buffer before libsysv can answer EFAULT for
#                      it, and wrap signal handlers); the runtime still
#                      comes before the C library, so that its malloc and
#                      pthread interceptors win;
#   PRIMD_WRAPPER      a command put before primd (valgrind);
#   PRIM_CONFORM_NOT_COMPARED, PRIM_SAN_SYSCALLS, PRIMD_WRAPPER_PIDFD
#                      narrower ones, set below where each is needed.
# The conformance programs are never sanitizer-built (GNUmakefile,
# SAN_CFLAGS): they stand for unmodified programs, and run on the kernel
# with bad pointers that the sanitizers' msgsnd and msgrcv would report.
set -eu

tool=${1:?usage: sanitize.sh asan|tsan|valgrind}
MAKE=${MAKE:-make}
CC=${CC:-cc}
top=$(pwd -P)
S=$top/tests/sanitize

# The runtime of CC, or a failure that says what to install.
runtime() {
	rt=$($CC -print-file-name="$1")
	[ -e "$rt" ] || {
		echo "sanitize: $CC has no $1 (make deps installs $2)" >&2
		exit 1
	}
	readlink -f "$rt"
}

case $tool in
asan)
	B=build-asan
	# -fno-sanitize-recover: undefined behaviour stops the program, as a
	# memory error does, so that no check can pass over one.
	SAN_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	PRIM_TEST_PRELOAD=$(runtime libasan.so libasan8)
	runtime libubsan.so libubsan1 >/dev/null
	logs=$top/$B/san-logs
	# handle_segv=0, handle_sigbus=0: libsysv installs its own handler
	# for SIGSEGV and SIGBUS, which turns a fault in its copy routine
	# into EFAULT and hands every other fault to the program's own
	# disposition. With ASan's handler installed first, the disposition
	# libsysv inherits would be ASan's: the checks of a program's own
	# SIGSEGV handling (check_conform: the default action kills with the
	# signal, as on the kernel) would test ASan's reporter instead, on
	# both sides. Without it a wild access outside the copy routine is a
	# death by SIGSEGV, which every check sees as a failure, only with no
	# ASan report (run the program again without LD_PRELOAD to get one).
	# verify_asan_link_order=0: libsysv comes before the runtime in
	# LD_PRELOAD (see above), and ASan would refuse to start for that,
	# although the runtime still comes before the C library in the
	# lookup scope (its interceptors still win).
	# detect_leaks=1: every process, ours and the interpreters'; the
	# suppressions (tests/sanitize/lsan.supp) name the leaks that are not
	# ours.
	ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:verify_asan_link_order=0:detect_leaks=1:log_path=$logs/asan"
	LSAN_OPTIONS="suppressions=$S/lsan.supp:print_suppressions=0"
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
	export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS PRIM_TEST_PRELOAD
	;;
tsan)
	B=build-tsan
	# ck's atomics are inline assembly, which TSan does not see at all
	# (tests/sanitize/ck_pr_tsan.h says what this build uses instead).
	SAN_CFLAGS="-fsanitize=thread -include $S/ck_pr_tsan.h"
	PRIM_TEST_PRELOAD=$(runtime libtsan.so libtsan2)
	logs=$top/$B/san-logs
	# handle_segv=0, handle_sigbus=0: as for ASan (libsysv's EFAULT).
	# handle_sigfpe=0 too, so that TSan installs no signal handler while
	# it initialises: in a program linked with -lsysv and TSan the
	# runtime's own sigaction is libsysv's (the next one after it), which
	# is instrumented and cannot run before TSan is ready (it crashed in
	# __tsan_func_entry). A SIGFPE kills as without TSan.
	TSAN_OPTIONS="handle_segv=0:handle_sigbus=0:handle_sigfpe=0:suppressions=$S/tsan.supp:print_suppressions=0:log_path=$logs/tsan"
	# check_conform's "sig" lines (a program's own SIGSEGV and SIGBUS
	# handling around libsysv's) are shown but not compared: TSan wraps
	# every handler it is given (here libsysv's, through its sigaction),
	# sets errno to 99 (EADDRNOTAVAIL) before calling it, delivers it with
	# a mask of its own, and reports back the flags it was given, where
	# the kernel adds SA_RESTORER and drops unknown bits. The oracle run
	# cannot have TSan too: TSan's msgsnd and msgrcv touch a wild msgp's
	# shadow and crash the EFAULT checks. make check and check-asan
	# compare every line.
	PRIM_CONFORM_NOT_COMPARED='^sig '
	# check_nosyscall_sysv: TSan gives every address an atomic touches a
	# SyncVar, from a slab it maps 168 KiB at a time (MmapOrDie from
	# DenseSlabAlloc<SyncVar>::Refill, under __tsan_atomic64_compare_
	# exchange_strong in prim_msgq_send: strace -k shows it). The longer
	# loop reaches more message slots, so it maps a few more slabs: those
	# mmaps, and only those, are not counted as the loop's.
	PRIM_SAN_SYSCALLS='^[0-9]+ +mmap\(NULL, 172032, PROT_READ\|PROT_WRITE, MAP_PRIVATE\|MAP_ANONYMOUS, -1, 0\) = 0x'
	export TSAN_OPTIONS PRIM_TEST_PRELOAD PRIM_CONFORM_NOT_COMPARED \
		PRIM_SAN_SYSCALLS
	;;
valgrind)
	B=build
	SAN_CFLAGS=
	command -v valgrind >/dev/null 2>&1 || {
		echo "sanitize: valgrind is missing (make deps installs it)" >&2
		exit 1
	}
	logs=$top/$B/san-logs
	# -q: a log holds errors and leaks only, so an empty one is clean.
	VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --suppressions=$S/valgrind.supp"
	PRIMD_WRAPPER="$VG --log-file=$logs/primd.%p"
	# Debian 12's valgrind (3.19) does not implement pidfd_open (434,
	# probed below), which primd watches client processes with: under
	# it, each call fails with ENOSYS (primd logs it) and primd falls
	# back to its owner sweep, which reaps the dead as well, only later.
	# So memcheck does not see the pidfd path; valgrind's warning about
	# the call is not a report (reports() drops it, and only it); and
	# check_flood's part that counts the broker's pidfds runs its broker
	# natively.
	mkdir -p "$B"
	printf '%s\n' '#include <sys/syscall.h>' '#include <unistd.h>' \
		'int main(void) { return syscall(434, getpid(), 0) < 0; }' |
		$CC -x c -o "$B/pidfd_probe" -
	PRIMD_WRAPPER_PIDFD=0
	! valgrind -q "$B/pidfd_probe" 2>/dev/null || PRIMD_WRAPPER_PIDFD=1
	# check_conform's item 28 (undo applied by the time waitpid returns)
	# races a broker that memcheck slows some fifty times and that has no
	# pidfds: a waiter the reap hands the unit to is, now and then (1 to
	# 3 rounds in 200), still counted in GETNCNT when the parent reads
	# it. Shown, not compared; make check compares it.
	PRIM_CONFORM_NOT_COMPARED='^28 undo applied when waitpid returns'
	export PRIMD_WRAPPER PRIMD_WRAPPER_PIDFD PRIM_CONFORM_NOT_COMPARED
	;;
*)
	echo "usage: sanitize.sh asan|tsan|valgrind" >&2
	exit 2
	;;
esac

# unhandled FILE: FILE without valgrind's warnings about pidfd_open
# (syscall 434, see above), each five lines, and about the ioctl
# NS_GET_USERNS (0xb701: broker/perm.c asks which user namespace owns the
# IPC namespace; it takes no memory argument, so memcheck misses nothing),
# each three.
unhandled() {
	awk '/WARNING: unhandled amd64-linux syscall: 434$/ { skip = 5 }
	     /Warning: noted but unhandled ioctl 0xb701 / { skip = 3 }
	     skip > 0 { skip--; next } { print }' "$1"
}

# reports: print every report logged so far; fail if there is one.
reports() {
	n=0
	for f in "$logs"/*; do
		[ -s "$f" ] || continue
		if [ "$tool" = valgrind ]; then
			unhandled "$f" >"$f.rest"
			mv "$f.rest" "$f"
			[ -s "$f" ] || continue
		fi
		n=$((n + 1))
		echo "==== $f" >&2
		cat "$f" >&2
	done
	[ "$n" -eq 0 ] || {
		echo "sanitize: $tool: $n report(s) above (in $logs)" >&2
		return 1
	}
}

rm -rf "$logs"
mkdir -p "$logs"
chmod 1777 "$logs"
t0=$(date +%s)
st=0
$MAKE --no-print-directory B=$B CFLAGS="${CFLAGS:-} $SAN_CFLAGS" \
	SAN_CFLAGS="$SAN_CFLAGS" ${SAN_TARGETS:-check-run} ||
	st=$?
reports || st=1
[ "$st" -eq 0 ] || {
	echo "sanitize: $tool: FAILED" >&2
	exit 1
}
if [ "$tool" = valgrind ]; then
	for c in tests/unit/test_*.c; do
		t=$B/tests/$(basename "$c" .c)
		echo "== valgrind $t"
		$VG --log-file="$logs/$(basename "$t").%p" "$t" ||
			st=1
	done
	reports || st=1
	[ "$st" -eq 0 ] || {
		echo "sanitize: valgrind: the unit tests FAILED" >&2
		exit 1
	}
fi
echo "make check-$tool: ${SAN_TARGETS:-check-run} passed, no report ($(($(date +%s) - t0)) s)"
