/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Credentials are the current ones: the calls that change who the process
 * is, interposed so that libsysv knows when its judgements went stale. The
 * broker judges each request by the SO_PEERCRED of the connection (read
 * when it is made), and the id cache keeps the access each object was
 * judged to give; after setuid(nobody), both would go on speaking for
 * root. Each wrapper calls the C library's function and, when it
 * succeeds, bumps the process-wide credential generation sysv__cred_gen
 * (sysv_int.h): the broker client then connects again (broker.c) and each
 * cached object asks the broker again before its next call (cache.c).
 *
 * Interposed: setuid, seteuid, setreuid, setresuid, setgid, setegid,
 * setregid, setresgid, setgroups, initgroups (glibc's calls its setgroups
 * internally, past the PLT) and, on Linux, capset. The same change made
 * with syscall(2), by libcap's own system calls, or inside the C library
 * is not seen; broker.c still notices a changed effective uid or gid on
 * the control path.
 *
 * Concurrency: every wrapper is safe from any number of threads at once
 * and as safe as the function it wraps (glibc's setuid family applies the
 * change to every thread before it returns). The real functions are looked
 * up with dlsym(RTLD_NEXT) once, in the constructor or on first use; a
 * thread that re-enters a wrapper from inside dlsym, or a lookup that
 * finds nothing, fails the call with ENOSYS rather than change the
 * credentials behind libsysv's back.
 */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/capability.h>
#endif

#include "sysv_int.h"

SYSV_HIDDEN _Atomic uint32_t sysv__cred_gen;

#ifdef __linux__
/* Not declared by the C library's headers. */
int capset(cap_user_header_t hdr, const cap_user_data_t data);
#endif

enum {
	F_SETUID,
	F_SETEUID,
	F_SETREUID,
	F_SETRESUID,
	F_SETGID,
	F_SETEGID,
	F_SETREGID,
	F_SETRESGID,
	F_SETGROUPS,
	F_INITGROUPS,
	F_CAPSET,
	F_N
};

static const char *const names[F_N] = {
    "setuid",	"seteuid",   "setreuid",  "setresuid",	"setgid", "setegid",
    "setregid", "setresgid", "setgroups", "initgroups", "capset",
};

static void *_Atomic real[F_N];

/* The C library's function i, or NULL (see the contract above). */
static void *
resolve(int i)
{
	return sysv__next(&real[i], names[i]);
}

/* After a change that succeeded: every judgement made before is stale. */
static int
changed(int r)
{
	if (r == 0)
		atomic_fetch_add_explicit(&sysv__cred_gen, 1,
					  memory_order_relaxed);
	return r;
}

typedef int uid1_fn(uid_t);
typedef int uid2_fn(uid_t, uid_t);
typedef int uid3_fn(uid_t, uid_t, uid_t);
typedef int gid1_fn(gid_t);
typedef int gid2_fn(gid_t, gid_t);
typedef int gid3_fn(gid_t, gid_t, gid_t);
typedef int groups_fn(size_t, const gid_t *);
typedef int initgroups_fn(const char *, gid_t);
#ifdef __linux__
typedef int capset_fn(cap_user_header_t, const cap_user_data_t);
#endif

/* f_: the C library's function i, of type fn; or fail with ENOSYS. */
#define REAL(i, fn)                                                            \
	fn *f_ = (fn *)resolve(i);                                             \
	if (f_ == NULL) {                                                      \
		errno = ENOSYS;                                                \
		return -1;                                                     \
	}

SYSV_EXPORT int
setuid(uid_t uid)
{
	REAL(F_SETUID, uid1_fn);
	return changed(f_(uid));
}

SYSV_EXPORT int
seteuid(uid_t euid)
{
	REAL(F_SETEUID, uid1_fn);
	return changed(f_(euid));
}

SYSV_EXPORT int
setreuid(uid_t ruid, uid_t euid)
{
	REAL(F_SETREUID, uid2_fn);
	return changed(f_(ruid, euid));
}

SYSV_EXPORT int
setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
	REAL(F_SETRESUID, uid3_fn);
	return changed(f_(ruid, euid, suid));
}

SYSV_EXPORT int
setgid(gid_t gid)
{
	REAL(F_SETGID, gid1_fn);
	return changed(f_(gid));
}

SYSV_EXPORT int
setegid(gid_t egid)
{
	REAL(F_SETEGID, gid1_fn);
	return changed(f_(egid));
}

SYSV_EXPORT int
setregid(gid_t rgid, gid_t egid)
{
	REAL(F_SETREGID, gid2_fn);
	return changed(f_(rgid, egid));
}

SYSV_EXPORT int
setresgid(gid_t rgid, gid_t egid, gid_t sgid)
{
	REAL(F_SETRESGID, gid3_fn);
	return changed(f_(rgid, egid, sgid));
}

SYSV_EXPORT int
setgroups(size_t n, const gid_t *list)
{
	REAL(F_SETGROUPS, groups_fn);
	return changed(f_(n, list));
}

SYSV_EXPORT int
initgroups(const char *user, gid_t group)
{
	REAL(F_INITGROUPS, initgroups_fn);
	return changed(f_(user, group));
}

#ifdef __linux__
SYSV_EXPORT int
capset(cap_user_header_t hdr, const cap_user_data_t data)
{
	REAL(F_CAPSET, capset_fn);
	return changed(f_(hdr, data));
}
#endif

__attribute__((constructor)) static void
creds_init(void)
{
	for (int i = 0; i < F_N; i++)
		resolve(i);
}
