#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The demo (make demo): in a private IPC namespace, with a private broker,
#   1. real work by unmodified programs: the Perl (IPC::SysV), Python
#      (sysv_ipc) and PHP (sysvmsg/sysvsem) producer/consumer pipelines of
#      tests/scripts, each run on the kernel and then through
#      `primctl run`, with their results and timings;
#   2. every benchmark in $B/bench, each row libprim/libsysv against the
#      kernel in the same run (SPEEDUP lines);
#   3. a short summary.
# The broker is stopped at the end and nothing is left behind.
#   sh scripts/demo.sh [N]       (N messages per pipeline, default 20000)
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
N=${1:-20000}
PY=${PYTHON:-/usr/bin/python3}
S=$(cd "$(dirname "$0")/.." && pwd)/tests/scripts

fail() {
	echo "demo: $*" >&2
	exit 1
}

# ---- re-enter in a private IPC namespace ----------------------------------
if [ "${PRIM_DEMO_NS:-}" != 1 ]; then
	for f in "$B/primd" "$B/primctl" "$B/libsysv.so"; do
		[ -e "$f" ] || fail "$f is not built: run 'make' first"
	done
	if unshare --ipc true 2>/dev/null; then
		ns="unshare --ipc"
	elif unshare -U -r -i true 2>/dev/null; then
		ns="unshare -U -r -i"
	else
		fail "cannot unshare an IPC namespace"
	fi
	PRIM_DEMO_NS=1 B=$B exec $ns sh "$0" "$@"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_demo.XXXXXX")
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

echo "== prim demo: System V IPC in userspace (private IPC namespace," \
	"$(nproc) CPUs, $(uname -sr))"
"$B/primd" -s "$dir/sock" >"$dir/broker.log" 2>&1 &
bpid=$!
i=0
while [ ! -S "$dir/sock" ]; do
	i=$((i + 1))
	[ "$i" -le 100 ] || { cat "$dir/broker.log" >&2; fail "the broker did not start"; }
	sleep 0.1
done
PRIM_BROKER_SOCK=$dir/sock
export PRIM_BROKER_SOCK
echo "== broker: $B/primd -s $dir/sock (pid $bpid)"

# ---- 1. unmodified programs -------------------------------------------------
echo
echo "== 1. unmodified interpreters, $N messages, 2 producers + 2 consumers"
echo "   (a queue, msgtyp -2 to drain data before the stop messages, a"
echo "    SEM_UNDO mutex guarding a counter): kernel, then primctl run"
summary=""
for lang in perl python php; do
	case "$lang" in
	perl)
		cmd="perl $S/pipeline.pl $N"
		perl -MIPC::SysV -e 1 2>/dev/null || cmd=""
		;;
	python)
		cmd="$PY $S/pipeline.py $N"
		"$PY" -c 'import sysv_ipc' 2>/dev/null || cmd=""
		;;
	php)
		cmd="php $S/pipeline.php $N"
		php -r 'exit(extension_loaded("sysvmsg") && extension_loaded("pcntl") ? 0 : 1);' \
			2>/dev/null || cmd=""
		;;
	esac
	if [ -z "$cmd" ]; then
		echo "   $lang: interpreter or module missing (see tests/check_scripts.sh), skipped"
		continue
	fi
	(env -u PRIM_BROKER_SOCK $cmd) >"$dir/$lang.kernel" 2>&1 ||
		echo "   $lang on the kernel FAILED"
	"$B/primctl" run -- $cmd >"$dir/$lang.prim" 2>&1 ||
		echo "   $lang through primctl run FAILED"
	sed 's/^/   kernel: /' "$dir/$lang.kernel"
	sed 's/^/   prim:   /' "$dir/$lang.prim"
	tk=$(sed -n 's/.*backend=kernel \([0-9.]*\) s.*/\1/p' "$dir/$lang.kernel")
	tp=$(sed -n 's/.*backend=prim \([0-9.]*\) s.*/\1/p' "$dir/$lang.prim")
	rk=$(grep 'pipeline:' "$dir/$lang.kernel" || :)
	rp=$(grep 'pipeline:' "$dir/$lang.prim" || :)
	same=no
	[ -n "$rk" ] && [ "$rk" = "$rp" ] && same=yes
	summary="$summary
   $lang pipeline: kernel ${tk:-?} s, prim ${tp:-?} s, same result: $same"
done

# ---- 2. benchmarks -------------------------------------------------------------
echo
echo "== 2. benchmarks: each row against the kernel's own call, same run"
: >"$dir/speedups"
: >"$dir/bench.all"
for b in "$B"/bench/*; do
	[ -x "$b" ] || continue
	case "$(basename "$b")" in
	nosys_*) continue ;; # a helper of the system-call check, not a benchmark
	esac
	echo
	echo "-- $(basename "$b")"
	st=0
	"$b" >"$dir/bench.out" 2>&1 || st=$?
	cat "$dir/bench.out"
	cat "$dir/bench.out" >>"$dir/bench.all"
	grep '^SPEEDUP ' "$dir/bench.out" >>"$dir/speedups" || :
	[ "$st" -eq 0 ] || echo "   $(basename "$b") exited $st"
done

# ---- 3. summary -------------------------------------------------------------------
echo
echo "== summary"
echo "   unmodified programs (wall time for $N messages):$summary"
echo "   speedups (x > 1: prim is x times faster than the kernel):"
awk '{ printf "     %-24s %8.2fx\n", $2, $3 }' "$dir/speedups"
sed -n 's/^sysv_semget_existing: /   semget: /p' "$dir/bench.all" 2>/dev/null || :
echo "== demo done; broker stopped, namespace discarded"
