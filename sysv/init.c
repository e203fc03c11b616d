/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Process-wide set-up of libsysv: the SIGSEGV/SIGBUS handler that gives
 * EFAULT (fault.c), the fork handlers, and the dlopen()
 * wrapper that lets the library work in programs that load their IPC code
 * with RTLD_DEEPBIND (PHP's sysvsem and sysvmsg extensions). A library
 * opened with RTLD_DEEPBIND looks up symbols in itself and its own
 * dependencies (libc) before the global scope, so it would bind semop to
 * libc and bypass the preloaded one. The wrapper drops the flag; the rest
 * of the call is the real dlopen's, made as a tail call so that the
 * caller's return address (which dlopen uses for $ORIGIN and the search
 * path) is still the caller's.
 *
 * Concurrency: the constructor runs before main, or at dlopen of libsysv;
 * the wrapper is thread-safe and resolves the real function at most once
 * per thread that races on it (idempotent).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#include "sysv_int.h"

typedef void *(*dlopen_fn)(const char *, int);

static _Atomic(dlopen_fn) real_dlopen;
static __thread int resolving;

static dlopen_fn
resolve(void)
{
	dlopen_fn f = atomic_load_explicit(&real_dlopen, memory_order_acquire);

	if (f != NULL || resolving)
		return f;
	resolving = 1; /* dlsym may call back into us */
	f = (dlopen_fn)dlsym(RTLD_NEXT, "dlopen");
	resolving = 0;
	if (f != NULL)
		atomic_store_explicit(&real_dlopen, f, memory_order_release);
	return f;
}

SYSV_EXPORT void *
dlopen(const char *file, int mode)
{
	dlopen_fn f = atomic_load_explicit(&real_dlopen, memory_order_acquire);

	if (__builtin_expect(f == NULL, 0) && (f = resolve()) == NULL)
		return NULL;
	return f(file, mode & ~RTLD_DEEPBIND);
}

static void
atfork_child(void)
{
	/* Forget, never lock: other threads' locks died with the fork. */
	sysv__broker_atfork_child();
	sysv__cache_atfork_child();
}

__attribute__((constructor)) static void
sysv_init(void)
{
	/* First, so that every later call already gets EFAULT. */
	sysv__fault_init();
	resolve();
	pthread_atfork(NULL, NULL, atfork_child);
}
