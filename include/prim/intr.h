/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Signal handlers and blocking calls: how a library that wraps the
 * program's signal handlers (libsysv) tells libprim that a handler ran, so
 * that a blocked semaphore operation or message-queue call returns -EINTR
 * as the kernel's semop(2), msgsnd(2) and msgrcv(2) do, even when the
 * handler ran while libprim was spinning before its futex sleep, or
 * between its last check and the system call (no system call was
 * interrupted then, so the kernel says nothing).
 *
 * The wrapping library keeps one struct prim_intr per thread and registers
 * a getter for the calling thread's (prim_intr_register). Its wrapper
 * calls prim_intr_note(prim_intr_self()) on entry, before the program's
 * handler. A blocking libprim call reads handlers when it starts and gives
 * up with -EINTR as soon as it differs; before every sleep it copies its
 * deadline into ts, sets armed, checks handlers again and sleeps with ts
 * as its absolute deadline: a handler that runs after that check makes ts
 * a time in the past, so a sleep not yet entered returns at once, and one
 * already entered is interrupted by the signal itself.
 *
 * Without a registered getter nothing changes: a blocked call returns
 * -EINTR only when its sleep was interrupted.
 *
 * Concurrency: prim_intr_register is meant for library initialisation (a
 * later call replaces the getter for calls that start afterwards).
 * prim_intr_note and the getter must be async-signal-safe; the struct is
 * only ever touched by its own thread (in handlers or not).
 */
#ifndef PRIM_INTR_H
#define PRIM_INTR_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct prim_intr {
	volatile uint32_t handlers; /* handlers run on this thread (wraps) */
	volatile uint32_t armed;    /* libprim is about to sleep until ts */
	struct timespec ts;	    /* that sleep's absolute deadline */
};

/* Returns the calling thread's record; never NULL once registered. */
typedef struct prim_intr *(*prim_intr_getter)(void);

/* Register the getter (NULL: none). */
void prim_intr_register(prim_intr_getter get);

/* The calling thread's record (NULL without a getter). */
struct prim_intr *prim_intr_self(void);

/* A handler ran on this thread: call first thing in the wrapper. */
void prim_intr_note(struct prim_intr *in);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
