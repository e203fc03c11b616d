#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The chaos test (tests/chaos/chaos.c) in a private IPC namespace with a
# private broker socket: workers and the broker killed at random, then the
# invariants. CHAOS_SECONDS sets the length (5 in make check, 60 in make
# chaos). The last line is the CHAOS summary.
set -eu
B=${B:-build}
if [ "${PRIM_CHAOS_INNER:-}" != 1 ]; then
	[ -n "${IPCNS:-}" ] || { echo "check_chaos: no IPC namespace" >&2; exit 1; }
	PRIM_CHAOS_INNER=1 exec $IPCNS sh "$0" "$@"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$B/chaos/chaos" -b "$B/primd" -s "$dir/sock" -t "${CHAOS_SECONDS:-5}" \
	-p "${CHAOS_WORKERS:-9}" > "$dir/out" 2>&1 || { cat "$dir/out"; exit 1; }
cat "$dir/out"
tail -n 1 "$dir/out" | grep -q '^CHAOS .* hangs=0 lost=0 dup=0$'
