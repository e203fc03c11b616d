/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The function an interposed name stands for in the next object
 * (dlsym(RTLD_NEXT)), looked up once and kept in the caller's slot. Used by
 * every interposer of libsysv (creds.c, wait.c, procfs.c, syscall.c).
 *
 * A lookup made while this thread is already inside one (dlsym may call
 * back into an interposed function) gets NULL: the caller then falls back
 * (ENOSYS, or the raw system call) instead of recursing.
 *
 * Concurrency: any thread; two threads racing store the same pointer.
 * Not sanitizer-instrumented under make check-tsan (GNUmakefile): a library
 * constructor may reach it before the sanitizer's runtime has started, and
 * the thread-local flag is initial-exec for the same reason (no
 * __tls_get_addr).
 */
#include <dlfcn.h>

#include "sysv_int.h"

static __thread int __attribute__((tls_model("initial-exec"))) resolving;

void *
sysv__next(void *_Atomic *slot, const char *name)
{
	void *f = atomic_load_explicit(slot, memory_order_acquire);

	if (__builtin_expect(f != NULL, 1) || resolving)
		return f;
	resolving = 1;
	f = dlsym(RTLD_NEXT, name);
	resolving = 0;
	if (f != NULL)
		atomic_store_explicit(slot, f, memory_order_release);
	return f;
}
