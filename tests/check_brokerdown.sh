#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# The broker killed: data-path calls go on, control calls fail with ENOSYS
# after PRIM_BROKER_WAIT, the next broker reaps who died meanwhile. In a
# private IPC namespace with a private socket.
set -eu
B=${B:-build}
if [ "${PRIM_BD_INNER:-}" != 1 ]; then
	[ -n "${IPCNS:-}" ] || { echo "check_brokerdown: no IPC namespace" >&2; exit 1; }
	PRIM_BD_INNER=1 exec $IPCNS sh "$0" "$@"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
timeout 300 "$B/chaos/brokerdown" "$B/primd" "$dir/sock"
