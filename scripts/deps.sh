#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# What prim needs to build and test, and how to get it on Debian.
#   deps.sh check     exit 1 with the apt-get line to run when something is missing
#   deps.sh install   apt-get install what is missing (as root), then check
set -u

missing() {
	m=""
	[ -f /usr/include/ck_pr.h ] || [ -f /usr/local/include/ck_pr.h ] || m="$m libck-dev"
	[ -f /usr/include/cmocka.h ] || [ -f /usr/local/include/cmocka.h ] || m="$m libcmocka-dev"
	command -v mandoc >/dev/null 2>&1 || m="$m mandoc"
	command -v strace >/dev/null 2>&1 || m="$m strace"
	command -v unshare >/dev/null 2>&1 || m="$m util-linux"
	command -v cc >/dev/null 2>&1 || m="$m gcc"
	command -v make >/dev/null 2>&1 || m="$m make"
	echo "$m"
}

m=$(missing)
case "${1:-check}" in
install)
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
	m=$(missing)
	[ -z "$m" ] || { echo "deps: still missing:$m" >&2; exit 1; }
	echo "deps: all present"
	;;
check)
	if [ -n "$m" ]; then
		echo "deps: missing:$m" >&2
		echo "deps: run 'make deps' as root, or: apt-get install -y$m" >&2
		exit 1
	fi
	;;
*)
	echo "usage: deps.sh check|install" >&2
	exit 2
	;;
esac
