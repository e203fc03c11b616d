#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# What prim needs, and how to get it on Debian.
#   deps.sh check     exit 1, with the apt-get line to run, when something
#                     needed to BUILD is missing (run before every compile)
#   deps.sh install   apt-get install whatever is missing to build AND test
#                     (as root; otherwise print the line to run as root)
#   deps.sh install sanitize
#                     the same, and what make check-asan, check-tsan and
#                     check-valgrind need too
set -u

# Needed to build libprim, libsysv, primd and primctl.
missing_build() {
	m=""
	command -v cc >/dev/null 2>&1 || m="$m gcc"
	command -v make >/dev/null 2>&1 || m="$m make"
	[ -f /usr/include/ck_pr.h ] || [ -f /usr/local/include/ck_pr.h ] || m="$m libck-dev"
	echo "$m"
}

# Needed by make check, make fuzz, make bench and make demo.
missing_test() {
	m=""
	[ -f /usr/include/cmocka.h ] || [ -f /usr/local/include/cmocka.h ] || m="$m libcmocka-dev"
	command -v mandoc >/dev/null 2>&1 || m="$m mandoc"
	command -v strace >/dev/null 2>&1 || m="$m strace"
	{ command -v unshare && command -v setpriv; } >/dev/null 2>&1 || m="$m util-linux"
	command -v perl >/dev/null 2>&1 || m="$m perl"
	# The drop-in is tested under the interpreters people run it with,
	# Debian's own: /usr/bin/python3 (not a pyenv or venv one on PATH).
	[ -x /usr/bin/python3 ] || m="$m python3"
	/usr/bin/python3 -c 'import sysv_ipc' >/dev/null 2>&1 || m="$m python3-sysv-ipc"
	command -v php >/dev/null 2>&1 || m="$m php-cli"
	# The broker's fuzzer: clang with libFuzzer and ASan's runtime.
	command -v clang >/dev/null 2>&1 || m="$m clang"
	d=$(clang -print-resource-dir 2>/dev/null) &&
		[ -n "$(find "$d/lib" -name 'libclang_rt.fuzzer*.a' 2>/dev/null)" ] ||
		m="$m libclang-rt-dev"
	echo "$m"
}

# Needed by make check-asan, check-tsan and check-valgrind: the sanitizer
# runtimes of the C compiler (Debian 12's gcc-12 brings these three through
# libgcc-12-dev; another gcc or a minimal system may lack them) and valgrind.
missing_sanitize() {
	m=""
	for rt in libasan.so:libasan8 libubsan.so:libubsan1 libtsan.so:libtsan2; do
		f=$(${CC:-cc} -print-file-name="${rt%%:*}" 2>/dev/null)
		[ -e "$f" ] || m="$m ${rt#*:}"
	done
	command -v valgrind >/dev/null 2>&1 || m="$m valgrind"
	echo "$m"
}

case "${1:-check}" in
install)
	more=
	[ "${2:-}" = sanitize ] && more=missing_sanitize
	m="$(missing_build)$(missing_test)$($more)"
	if [ -n "$m" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			echo "deps: installing:$m"
			DEBIAN_FRONTEND=noninteractive apt-get install -y $m ||
			{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $m; } ||
			exit 1
		else
			echo "deps: missing:$m" >&2
			echo "deps: as root, run: apt-get install -y$m" >&2
			exit 1
		fi
	fi
	m="$(missing_build)$(missing_test)$($more)"
	[ -z "$m" ] || { echo "deps: still missing:$m" >&2; exit 1; }
	echo "deps: all present"
	;;
check)
	m=$(missing_build)
	if [ -n "$m" ]; then
		echo "deps: missing:$m" >&2
		echo "deps: run 'make deps' as root, or: apt-get install -y$m" >&2
		exit 1
	fi
	;;
*)
	echo "usage: deps.sh check | install [sanitize]" >&2
	exit 2
	;;
esac
