/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The wait layer: sleep while a 32-bit word in shared memory holds an
 * expected value, until an absolute CLOCK_MONOTONIC deadline; wake sleepers.
 * Linux uses a shared (not PRIVATE) futex, FreeBSD and DragonFly umtx; one
 * file per OS implements these two functions and nothing else.
 *
 * Concurrency: safe from any number of processes and threads at once, on
 * any mapping of the word (the kernel keys shared waits by physical page).
 * Both are async-signal-safe. prim__wait is where a blocked libprim call
 * sleeps; it is not a cancellation point.
 */
#ifndef PRIM_WAIT_H
#define PRIM_WAIT_H

#include <stdint.h>
#include <time.h>

#define PRIM_HIDDEN __attribute__((visibility("hidden")))

/*
 * Sleep while *word == expect, until woken or until the absolute
 * CLOCK_MONOTONIC time *deadline (NULL: no deadline).
 * Returns 0 after a wake-up, 1 without sleeping because *word already
 * differed (callers re-check their condition either way: wake-ups may be
 * spurious; a caller that keeps getting 1 is spinning, and counts it
 * against its patience), -ETIMEDOUT once the deadline has passed, -EINTR
 * when a signal handler ran (never restarted, whatever SA_RESTART says, as
 * SysV calls are not).
 */
PRIM_HIDDEN int prim__wait(const uint32_t *word, uint32_t expect,
			   const struct timespec *deadline);

/* Wake up to n sleepers on word (INT32_MAX: all). Returns how many woke. */
PRIM_HIDDEN int prim__wake(const uint32_t *word, int n);

/* Current CLOCK_MONOTONIC time; deadline helpers. */
PRIM_HIDDEN void prim__now(struct timespec *ts);
PRIM_HIDDEN int prim__deadline_passed(const struct timespec *deadline);

#endif
