/* Live reload of the policy file (design.md §2.2).
 *
 * What is watched is the file's identity as stat() sees it, following links: device,
 * inode, size and modification time to the nanosecond. An editor that saves by rename, a
 * Kubernetes ConfigMap that swaps its `..data` link, `cp` over the file: each changes one
 * of them. The path is the one BULWARK_CONFIG gave, made absolute but with its links kept:
 * resolved once, it would name a ConfigMap's old directory for ever.
 *
 * The check runs at most once a second, from the slow paths of the hooks, one thread at a
 * time, never while this thread is inside the library's own work (the guard), never in a
 * child that runs in its parent's memory (vfork). Reading and compiling a file allocates
 * and takes libc's locks, which a signal handler that interrupted their holder must not
 * do: that part waits until the thread is not possibly in a handler (see
 * maybe_in_handler). A file the loader refuses is reported once and not read again until
 * its identity changes or `bulwark reload` asks. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fleet.h"
#include "group.h"
#include "reload.h"
#include "sink.h"
#include "state.h"

#define PERIOD_US 1000000        /* at most one check a second */
#define HANDLER_RETRY_US 20000   /* possibly in a signal handler: look again soon */
#define SETTLE_RETRY_US 100000   /* the file changed while it was read */

int64_t bw_reload_due = INT64_MAX;

struct ident {
	int ok;                  /* stat() succeeded; else err */
	int err;
	int regular;             /* a regular file: anything else (a FIFO) could block a read */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
};

static char path[PATH_MAX];
static struct ident loaded;      /* the file whose policy is in force */
static struct ident refused;     /* the file last refused, while have_refused */
static int have_refused;
static uint64_t seen_asks;       /* the group's reload count last acted on */
static int busy;                 /* a thread is checking */
static struct bw_diags diags;    /* large: not on a program thread's stack */

static void identify(struct ident *id)
{
	struct stat st;
	memset(id, 0, sizeof *id);
	if (stat(path, &st) != 0) {
		id->err = errno;
		return;
	}
	id->ok = 1;
	id->regular = S_ISREG(st.st_mode);
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static int same(const struct ident *a, const struct ident *b)
{
	if (!a->ok || !b->ok)
		return a->ok == b->ok && a->err == b->err;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->regular == b->regular;
}

void bw_reload_remember(const char *given)
{
	path[0] = '\0';
	if (!given || !*given)
		return;
	size_t len = strlen(given);
	if (given[0] == '/') {
		if (len >= sizeof path)
			return;
		memcpy(path, given, len + 1);
	} else {
		/* the program may change directory later: the file is the one meant now */
		if (!getcwd(path, sizeof path)) {
			path[0] = '\0';
			return;
		}
		size_t dlen = strlen(path);
		if (dlen + 1 + len >= sizeof path) {
			path[0] = '\0';
			return;
		}
		path[dlen] = '/';
		memcpy(path + dlen + 1, given, len + 1);
	}
	identify(&loaded);
}

void bw_reload_arm(void)
{
	if (!path[0])
		return;
	seen_asks = bw_group_reloads();
	__atomic_store_n(&bw_reload_due, bw_clock_us(CLOCK_MONOTONIC_COARSE) + PERIOD_US,
			 __ATOMIC_RELAXED);
}

void bw_reload_after_fork(void)
{
	__atomic_store_n(&busy, 0, __ATOMIC_RELAXED);
}

/* Whether this thread may be running a signal handler: on the alternate signal stack, or
 * with a signal blocked that has a handler (the kernel blocks the signal being handled,
 * unless the handler asked for SA_NODEFER, which goes unseen). A program that keeps a
 * handled signal blocked outside its handlers only has its reload wait for a call made
 * while it is not. */
static int maybe_in_handler(void)
{
	stack_t ss;
	if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
		return 1;
	sigset_t blocked;
	if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0)
		return 1;
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP || sigismember(&blocked, sig) != 1 ||
		    sigaction(sig, NULL, &sa) != 0)
			continue;
		if ((sa.sa_flags & SA_SIGINFO) ||
		    (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN))
			return 1;
	}
	return 0;
}

static void put(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void retry_in(int64_t now, int64_t us)
{
	__atomic_store_n(&bw_reload_due, now + us, __ATOMIC_RELAXED);
}

static void reload(int64_t now, const struct ident *id, int asked)
{
	struct bw_engine *e = __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE);
	memset(&diags, 0, sizeof diags);
	struct bw_config *cfg = id->regular ? bw_config_load_file(path, &diags) : NULL;
	struct ident after;
	identify(&after);
	if (!same(id, &after)) {
		/* written while it was read: what was read may be half of it */
		if (cfg)
			bw_config_free(cfg);
		retry_in(now, SETTLE_RETRY_US);
		return;
	}
	if (!cfg) {
		struct bw_diag made = { .line = 0 };
		const struct bw_diag *d = diags.n ? &diags.d[0] : NULL;
		if (!d) {
			put(made.file, sizeof made.file, path);
			put(made.msg, sizeof made.msg, !id->ok ? strerror(id->err) :
			    !id->regular ? "not a regular file" : "cannot be loaded");
			d = &made;
		}
		refused = *id;
		have_refused = 1;
		bw_engine_reload_error(e, d, path, asked);
		return;
	}
	have_refused = 0;
	loaded = *id;
	bw_apply_overrides(cfg, 0);
	bw_fleet_settle(cfg);
	/* no level in the file: the level of the sink events go to, as at start */
	if (!cfg->log.level_given)
		cfg->log.level = bw_level_for_sink(bw_sink_kind());
	if (bw_config_differs(e->cfg, cfg) == 0) {
		bw_engine_reload_event(e, e->cfg, path, asked);
		bw_config_free(cfg);
		return;
	}
	if (bw_shim_swap(cfg) < 0) {
		struct bw_diag d = { .line = 0 };
		put(d.file, sizeof d.file, path);
		put(d.msg, sizeof d.msg, "the new policy cannot be put in place (out of memory, "
		    "or more rule names than a process can hold over its life)");
		refused = *id;
		have_refused = 1;
		bw_engine_reload_error(e, &d, path, asked);
		bw_config_free(cfg);
		return;
	}
	bw_engine_reload_event(__atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE), e->cfg, path,
			       asked);
}

static void check(int64_t now)
{
	struct ident id;
	identify(&id);
	uint64_t asks = bw_group_reloads();
	int asked = asks != seen_asks;
	if (!asked && (same(&id, &loaded) || (have_refused && same(&id, &refused))))
		return;
	if (maybe_in_handler()) {
		retry_in(now, HANDLER_RETRY_US);
		return;
	}
	seen_asks = asks;
	reload(now, &id, asked);
}

void bw_reload_poll(void)
{
	int saved = errno;
	if (bw_guarded() || __atomic_load_n(&bw_shim.life, __ATOMIC_ACQUIRE) != BW_LIFE_READY ||
	    bw_borrowed_memory() || __atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE)) {
		errno = saved;
		return;
	}
	int64_t now = bw_clock_us(CLOCK_MONOTONIC_COARSE);
	if (now >= __atomic_load_n(&bw_reload_due, __ATOMIC_RELAXED)) {
		retry_in(now, PERIOD_US);
		bw_guard_enter();
		/* the group's metrics learn this process's counts on the same beat */
		bw_engine_flush(__atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE));
		check(now);
		/* a forked child of a fleet stands for election where a thread may be made */
		if (bw_fleet_wants_thread() && !maybe_in_handler())
			bw_fleet_tick();
		bw_guard_leave();
	}
	__atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
	errno = saved;
}
