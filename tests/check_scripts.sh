#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Unmodified interpreters on the drop-in: the producer/consumer pipelines of
# tests/scripts (Perl IPC::SysV, Python sysv_ipc, PHP sysvmsg/sysvsem, the
# last one loading its extensions with RTLD_DEEPBIND) run first against the
# kernel, then under `$B/primctl run` (own IPC namespace, own broker on a
# fresh socket path). Each must print the same result line both times, say
# it used the kernel the first time and prim the second (the kernel lists
# no queue of ours then), and exit 0. A missing interpreter or module is a
# failure, named exactly.
#   B=build IPCNS="unshare --ipc" sh tests/check_scripts.sh [N]
set -eu

B=${B:-build}
case "$B" in /*) ;; *) B=$(pwd)/$B ;; esac
IPCNS=${IPCNS:-unshare --ipc}
N=${1:-10000}
PY=${PYTHON:-/usr/bin/python3}
# make check-asan, check-tsan (scripts/sanitize.sh): primctl run preloads
# the sanitizer's runtime after libsysv.
RUNPRE=${PRIM_TEST_PRELOAD:+env LD_PRELOAD=$PRIM_TEST_PRELOAD}
S=$(cd "$(dirname "$0")" && pwd)/scripts

fail() {
	echo "check_scripts: FAIL: $*" >&2
	exit 1
}

brokers_on() {
	for d in /proc/[0-9]*; do
		c=$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null) || continue
		case "$c" in
		*primd*" $1"*) echo "${d#/proc/}" ;;
		esac
	done
}

# The interpreter command line of one script.
cmd_of() {
	case "$1" in
	perl) echo "perl $S/pipeline.pl $N" ;;
	python) echo "$PY $S/pipeline.py $N" ;;
	php) echo "php $S/pipeline.php $N" ;;
	esac
}

if [ "${1:-}" = --inner ]; then
	how=$2
	lang=$3
	out=$4
	N=$5
	if [ "$how" = kernel ]; then
		timeout 120 $(cmd_of "$lang") >"$out" 2>&1
		exit
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/prim_scripts_ns.XXXXXX")
	cleanup() {
		for p in $(brokers_on "$dir/sock"); do
			kill "$p" 2>/dev/null || :
		done
		rm -rf "$dir"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	st=0
	PRIM_IDLE_EXIT=1 PRIM_BROKER_SOCK=$dir/sock \
		timeout 120 $RUNPRE "$B/primctl" run -- $(cmd_of "$lang") >"$out" 2>&1 ||
		st=$?
	if [ "$st" -ne 0 ] && [ -s "$dir/sock.log" ]; then
		sed 's/^/  broker: /' "$dir/sock.log" >>"$out"
	fi
	exit "$st"
fi

# ---- what is needed -------------------------------------------------------
missing=""
command -v perl >/dev/null 2>&1 || missing="$missing perl"
perl -MIPC::SysV -e 1 2>/dev/null ||
	missing="$missing perl-module-IPC::SysV(perl-base/perl)"
[ -x "$PY" ] || missing="$missing $PY(python3)"
"$PY" -c 'import sysv_ipc' 2>/dev/null ||
	missing="$missing python3-sysv-ipc(module sysv_ipc for $PY)"
if command -v php >/dev/null 2>&1; then
	for e in sysvmsg sysvsem sysvshm pcntl; do
		php -r "exit(extension_loaded('$e') ? 0 : 1);" 2>/dev/null ||
			missing="$missing php-extension-$e(php-cli)"
	done
else
	missing="$missing php-cli"
fi
if [ -n "$missing" ]; then
	echo "check_scripts: missing:$missing" >&2
	echo "check_scripts: on Debian: apt-get install -y perl python3-sysv-ipc php-cli" >&2
	exit 1
fi
[ -n "$IPCNS" ] || fail "no way to unshare an IPC namespace (IPCNS is empty)"
for f in "$B/libsysv.so" "$B/primd" "$B/primctl"; do
	[ -e "$f" ] || fail "$f not built"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/prim_scripts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

status=0
for lang in perl python php; do
	for how in kernel prim; do
		st=0
		$IPCNS sh "$0" --inner "$how" "$lang" "$tmp/$lang.$how" "$N" || st=$?
		if [ "$st" -ne 0 ]; then
			echo "check_scripts: $lang on $how exited $st:" >&2
			sed 's/^/  /' "$tmp/$lang.$how" >&2
			status=1
		fi
		grep 'timing:' "$tmp/$lang.$how" | sed "s/^/check_scripts: /" || :
		grep -q "backend=$how" "$tmp/$lang.$how" || {
			echo "check_scripts: $lang: expected backend=$how" >&2
			status=1
		}
	done
	k=$(grep 'pipeline:' "$tmp/$lang.kernel" || :)
	p=$(grep 'pipeline:' "$tmp/$lang.prim" || :)
	case "$k" in
	*" ok") ;;
	*)
		echo "check_scripts: $lang: the kernel run is not ok: $k" >&2
		status=1
		;;
	esac
	if [ -n "$k" ] && [ "$k" = "$p" ]; then
		echo "check_scripts: $k (same on kernel and prim)"
	else
		echo "check_scripts: $lang differs: kernel: '$k' prim: '$p'" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] || fail "see above"
echo "check_scripts: ok"
