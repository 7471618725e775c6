/* The wrapping VFS: every method forwards to the VFS it wraps; while this thread's
 * statement is being refused (an open breaker, a limiter in fail mode) the locks a real
 * conflict would hold fail (xLock, and xShmLock for the WAL writer), and xSleep does not
 * wait. A file object is ours followed by the wrapped
 * VFS's own. */
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include "sqlite_real.h"
#include "sqlite_vfs.h"

struct wfile {
	sqlite3_file base;
	sqlite3_file *real;
};

static sqlite3_vfs *inner;
static sqlite3_vfs outer;
static __thread int refusing __attribute__((tls_model("initial-exec")));
static __thread int fault __attribute__((tls_model("initial-exec")));

void bw_sq_refuse_locks(int sqlite_code)
{
	/* the unix VFS names a failed lock SQLITE_IOERR_LOCK; a bare I/O error code would
	 * say nothing of where it happened */
	refusing = sqlite_code == SQLITE_IOERR ? SQLITE_IOERR_LOCK : sqlite_code;
}

void bw_sq_inject_fault(int sqlite_code)
{
	fault = sqlite_code;
}

/* The pending fault if it is of the kind this operation can meet; consumed. */
static int take_fault(int lock)
{
	int prim = fault & 0xff;
	int is_lock = prim == SQLITE_BUSY || prim == SQLITE_LOCKED;
	if (!fault || is_lock != lock)
		return 0;
	int f = fault;
	fault = 0;
	return f;
}

#define REAL(f) (((struct wfile *)(f))->real)
#define M(f) (REAL(f)->pMethods)

static int w_close(sqlite3_file *f) { return M(f)->xClose(REAL(f)); }
static int w_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	int inj = take_fault(0);
	if (inj)
		return (inj & 0xff) == SQLITE_IOERR ? SQLITE_IOERR_READ : inj;
	return M(f)->xRead(REAL(f), b, n, o);
}

static int w_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	int inj = take_fault(0);
	if (inj)
		return (inj & 0xff) == SQLITE_IOERR ? SQLITE_IOERR_WRITE : inj;
	return M(f)->xWrite(REAL(f), b, n, o);
}
static int w_truncate(sqlite3_file *f, sqlite3_int64 n) { return M(f)->xTruncate(REAL(f), n); }
static int w_sync(sqlite3_file *f, int fl) { return M(f)->xSync(REAL(f), fl); }
static int w_size(sqlite3_file *f, sqlite3_int64 *n) { return M(f)->xFileSize(REAL(f), n); }
static int w_unlock(sqlite3_file *f, int l) { return M(f)->xUnlock(REAL(f), l); }
static int w_reserved(sqlite3_file *f, int *r) { return M(f)->xCheckReservedLock(REAL(f), r); }
static int w_fcntl(sqlite3_file *f, int op, void *a) { return M(f)->xFileControl(REAL(f), op, a); }
static int w_sector(sqlite3_file *f) { return M(f)->xSectorSize(REAL(f)); }
static int w_devchar(sqlite3_file *f) { return M(f)->xDeviceCharacteristics(REAL(f)); }
static int w_shmmap(sqlite3_file *f, int p, int sz, int ext, void volatile **pp) { return M(f)->xShmMap(REAL(f), p, sz, ext, pp); }
static void w_shmbarrier(sqlite3_file *f) { M(f)->xShmBarrier(REAL(f)); }
static int w_shmunmap(sqlite3_file *f, int del) { return M(f)->xShmUnmap(REAL(f), del); }
static int w_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return M(f)->xFetch(REAL(f), o, n, pp); }
static int w_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return M(f)->xUnfetch(REAL(f), o, p); }

static int w_lock(sqlite3_file *f, int level)
{
	if (refusing && level > SQLITE_LOCK_NONE)
		return refusing;
	int inj = level > SQLITE_LOCK_NONE ? take_fault(1) : 0;
	if (inj)
		return inj;
	return M(f)->xLock(REAL(f), level);
}

/* Slots of the WAL index's locks, fixed by SQLite's file format. */
#define WAL_WRITE_LOCK 0
#define WAL_CKPT_LOCK 1

/* In WAL mode writers and readers lock slots of the shared-memory index, not the file. A
 * refusal or an injected lock fault takes the writer's lock and the checkpointer's, as a
 * real writer or checkpointer holds them: a write then meets "database is locked". A
 * reader's slots are left alone: a WAL reader never waits for a writer; SQLite quietly
 * retries a read slot that is busy once, and answers one that stays busy with
 * SQLITE_PROTOCOL ("locking protocol"), a failure no real conflict gives. */
static int w_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	int writer = (flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) && n == 1 &&
		     (off == WAL_WRITE_LOCK || off == WAL_CKPT_LOCK);
	if (refusing && writer)
		return refusing;
	int inj = writer ? take_fault(1) : 0;
	if (inj)
		return inj;
	return M(f)->xShmLock(REAL(f), off, n, flags);
}

/* One table per version: SQLite looks only at the methods its iVersion promises. */
static sqlite3_io_methods methods[3] = {
	{ 1, w_close, w_read, w_write, w_truncate, w_sync, w_size, w_lock, w_unlock, w_reserved,
	  w_fcntl, w_sector, w_devchar, 0, 0, 0, 0, 0, 0 },
	{ 2, w_close, w_read, w_write, w_truncate, w_sync, w_size, w_lock, w_unlock, w_reserved,
	  w_fcntl, w_sector, w_devchar, w_shmmap, w_shmlock, w_shmbarrier, w_shmunmap, 0, 0 },
	{ 3, w_close, w_read, w_write, w_truncate, w_sync, w_size, w_lock, w_unlock, w_reserved,
	  w_fcntl, w_sector, w_devchar, w_shmmap, w_shmlock, w_shmbarrier, w_shmunmap, w_fetch,
	  w_unfetch },
};

static size_t real_offset(void)
{
	return (sizeof(struct wfile) + 15) & ~(size_t)15;
}

static int w_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
	struct wfile *w = (struct wfile *)f;
	(void)v;
	w->real = (sqlite3_file *)((char *)f + real_offset());
	w->real->pMethods = NULL;
	int rc = inner->xOpen(inner, name, w->real, flags, out);
	const sqlite3_io_methods *rm = w->real->pMethods;
	if (!rm) {
		w->base.pMethods = NULL;
		return rc;
	}
	int ver = rm->iVersion < 1 ? 1 : rm->iVersion > 3 ? 3 : rm->iVersion;
	w->base.pMethods = &methods[ver - 1];
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *n, int s) { (void)v; return inner->xDelete(inner, n, s); }
static int v_access(sqlite3_vfs *v, const char *n, int fl, int *r) { (void)v; return inner->xAccess(inner, n, fl, r); }
static int v_fullpath(sqlite3_vfs *v, const char *n, int no, char *o) { (void)v; return inner->xFullPathname(inner, n, no, o); }
static void *v_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return inner->xDlOpen(inner, n); }
static void v_dlerror(sqlite3_vfs *v, int n, char *m) { (void)v; inner->xDlError(inner, n, m); }
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return inner->xDlSym(inner, h, s); }
static void v_dlclose(sqlite3_vfs *v, void *h) { (void)v; inner->xDlClose(inner, h); }
static int v_random(sqlite3_vfs *v, int n, char *o) { (void)v; return inner->xRandomness(inner, n, o); }
/* SQLite's busy handler sleeps through this. While a statement is refused, its lock is
 * refused however long it waits: the program's busy timeout then runs out at once instead
 * of costing its whole length for a failure that is already certain. A handler of the
 * program's own that sleeps by itself still does. */
static int v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return refusing ? us : inner->xSleep(inner, us);
}
static int v_time(sqlite3_vfs *v, double *t) { (void)v; return inner->xCurrentTime(inner, t); }
static int v_lasterr(sqlite3_vfs *v, int n, char *o) { (void)v; return inner->xGetLastError(inner, n, o); }
static int v_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return inner->xCurrentTimeInt64(inner, t); }
static int v_setsys(sqlite3_vfs *v, const char *n, sqlite3_syscall_ptr p) { (void)v; return inner->xSetSystemCall(inner, n, p); }
static sqlite3_syscall_ptr v_getsys(sqlite3_vfs *v, const char *n) { (void)v; return inner->xGetSystemCall(inner, n); }
static const char *v_nextsys(sqlite3_vfs *v, const char *n) { (void)v; return inner->xNextSystemCall(inner, n); }

static void install(void)
{
	inner = bw_sq.vfs_find(NULL);
	if (!inner)
		return;
	outer.iVersion = inner->iVersion < 3 ? inner->iVersion : 3;
	outer.szOsFile = (int)real_offset() + inner->szOsFile;
	outer.mxPathname = inner->mxPathname;
	outer.zName = "bulwark";
	outer.xOpen = w_open;
	outer.xDelete = v_delete;
	outer.xAccess = v_access;
	outer.xFullPathname = v_fullpath;
	outer.xDlOpen = v_dlopen;
	outer.xDlError = v_dlerror;
	outer.xDlSym = v_dlsym;
	outer.xDlClose = v_dlclose;
	outer.xRandomness = v_random;
	outer.xSleep = v_sleep;
	outer.xCurrentTime = v_time;
	outer.xGetLastError = v_lasterr;
	if (outer.iVersion >= 2)
		outer.xCurrentTimeInt64 = inner->xCurrentTimeInt64 ? v_time64 : NULL;
	if (outer.iVersion >= 3) {
		outer.xSetSystemCall = inner->xSetSystemCall ? v_setsys : NULL;
		outer.xGetSystemCall = inner->xGetSystemCall ? v_getsys : NULL;
		outer.xNextSystemCall = inner->xNextSystemCall ? v_nextsys : NULL;
	}
	bw_sq.vfs_register(&outer, 1);
}

void bw_sq_vfs_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install);
}
