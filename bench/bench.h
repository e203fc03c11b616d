/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared helpers of the benchmarks: clocks, medians, Jain's fairness index,
 * shared anonymous mappings, CPU pinning and the output format.
 *
 * Every row is measured for libprim and for the kernel in the same run,
 * REPS times each, interleaved, and the medians are compared. Output: a
 * human table, then one machine-readable line per row:
 *   SPEEDUP <row> <x>     x > 1: libprim is x times better
 * A benchmark never fails because of a time; it exits non-zero only when
 * something did not work.
 */
#ifndef PRIM_BENCH_H
#define PRIM_BENCH_H

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BENCH_REPS 5

static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static inline double
bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Jain's fairness index of n per-process counts: 1 is perfectly fair. */
static inline double
bench_jain(const uint64_t *c, int n)
{
	double s = 0, s2 = 0;

	for (int i = 0; i < n; i++) {
		s += (double)c[i];
		s2 += (double)c[i] * (double)c[i];
	}
	return s2 > 0 ? s * s / (n * s2) : 0;
}

/* A shared anonymous mapping, 64-byte aligned, inherited across fork. */
static inline void *
bench_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* Pin the calling process to one CPU (modulo the CPUs there are). */
static inline void
bench_pin(int cpu)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	CPU_SET(cpu % (n > 0 ? n : 1), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static inline void
bench_header(const char *what)
{
	printf("\n%-16s %14s %14s %9s  %s\n", what, "libprim", "kernel",
	       "x", "note");
}

/*
 * Print one row. lower_is_better: values are times (ns/op), x = kernel/ours;
 * otherwise rates (ops/s), x = ours/kernel. Returns x.
 */
static inline double
bench_row(const char *row, double ours, double kernel, int lower_is_better,
	  const char *unit, const char *note)
{
	double x = lower_is_better ? kernel / ours : ours / kernel;

	printf("%-16s %11.1f %-2s %11.1f %-2s %8.1fx  %s\n", row, ours, unit,
	       kernel, unit, x, note ? note : "");
	return x;
}

static inline void
bench_speedup(const char *row, double x)
{
	printf("SPEEDUP %s %.2f\n", row, x);
}

#endif
