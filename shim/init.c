/* Process lifecycle: load the policy once (from the constructor, or from the first hook
 * that runs before it), follow fork, report at exit. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include "fdtable.h"
#include "clock.h"
#include "fleet.h"
#include "group.h"
#include "hold.h"
#include "names.h"
#include "overrides.h"
#include "real.h"
#include "reload.h"
#include "sigrestart.h"
#include "sink.h"
#include "state.h"

struct bw_shim bw_shim;
/* Every op reads as covered until the library is ready: the first hook initializes it. */
uint64_t bw_hot = BW_HOT_OPS;
_Static_assert((BW_OPS_ALL & ~BW_HOT_OPS) == 0, "every op has its bit in bw_hot");
__thread volatile int bw_guard_depth __attribute__((tls_model("initial-exec")));

static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned long rng_epoch = 1;          /* bumped in a forked child */
static unsigned long thread_ordinal;

int64_t bw_mono_us(void)
{
	return bw_clock_us(CLOCK_MONOTONIC);
}

static int64_t wall_us(void)
{
	return bw_clock_us(CLOCK_REALTIME);
}

/* Sleeps the whole time: a signal must not cut a backoff short into a retry storm. */
static void sleep_us(int64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
	int saved = errno;
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
	errno = saved;
}

/* Sleeps until done or until a signal handler runs that the interrupted call must not
 * outlive: returns the time left then, 0 when it slept the whole time. The wait is a read
 * of a timer descriptor because the kernel restarts a read after a handler installed with
 * SA_RESTART and fails it with EINTR after any other: the kernel knows which handler ran,
 * we would not. Without a descriptor to spare it falls back to nanosleep, and to asking
 * whether every installed handler restarts. */
static int64_t nap_us(int64_t us)
{
	int saved = errno;
	int64_t until = bw_mono_us() + us, left = 0;
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd >= 0) {
		struct itimerspec its = { .it_value = { (time_t)(until / 1000000),
							(long)(until % 1000000) * 1000 } };
		uint64_t ticks;
		ssize_t n = -1;
		if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
			n = syscall(SYS_read, tfd, &ticks, sizeof ticks);
		int err = errno;
		BW_REAL(close)(tfd);
		if (n == (ssize_t)sizeof ticks || (n < 0 && err == EINTR)) {
			left = until - bw_mono_us();
			errno = saved;
			return n < 0 && left > 0 ? left : 0;
		}
	}
	for (;;) {
		left = until - bw_mono_us();
		if (left <= 0)
			break;
		struct timespec ts = { (time_t)(left / 1000000), (long)(left % 1000000) * 1000 };
		if (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == EINTR && !bw_sig_restarts()) {
			left = until - bw_mono_us();
			break;
		}
	}
	errno = saved;
	return left > 0 ? left : 0;
}

static long tid(void)
{
	return (long)syscall(SYS_gettid);
}

static const struct bw_env shim_env = {
	.mono_us = bw_mono_us,
	.wall_us = wall_us,
	.sleep_us = sleep_us,
	.emit = bw_sink_write,
	.tid = tid,
	.nap_us = nap_us,
};

struct bw_rng *bw_thread_rng(void)
{
	static __thread struct bw_rng rng __attribute__((tls_model("initial-exec")));
	static __thread unsigned long epoch __attribute__((tls_model("initial-exec")));
	unsigned long now = __atomic_load_n(&rng_epoch, __ATOMIC_ACQUIRE);
	if (epoch != now) {
		/* a seeded run stays reproducible: seed, fork generation and thread order only */
		unsigned long n = __atomic_add_fetch(&thread_ordinal, 1, __ATOMIC_RELAXED);
		rng.s = bw_mix(bw_mix(__atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE)->seed, now), n);
		epoch = now;
	}
	return &rng;
}

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
		s = (uint64_t)wall_us() ^ (uint64_t)getpid() << 32;
	return s ? s : 1;
}

/* The command-line hash of start events and match.cmd_hash (config.h): over the bytes of
 * /proc/self/cmdline as the kernel gives them, read before main can rewrite its argv. 0
 * when it cannot be read. */
static uint64_t cmdline_hash(void)
{
	int saved = errno;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	uint64_t h = BW_CMD_HASH_INIT;
	size_t total = 0;
	if (fd < 0) {
		errno = saved;
		return 0;
	}
	char buf[4096];
	for (;;) {
		ssize_t n = syscall(SYS_read, fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		h = bw_cmd_hash(buf, (size_t)n, h);
		total += (size_t)n;
	}
	BW_REAL(close)(fd);
	errno = saved;
	return total && h ? h : 0;
}

static void after_fork_child(void)
{
	struct bw_engine *e = __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&bw_shim.life, __ATOMIC_ACQUIRE) != BW_LIFE_READY)
		return;
	/* fork returns into the program right after this: kill(0) on dead slots, getrandom
	 * and the sink must not leave their errno behind */
	int saved = errno;
	__atomic_store_n(&bw_shim.pid, (long)getpid(), __ATOMIC_RELAXED);
	/* a child works on its own: its counters start at zero, in every generation of the
	 * policy (the exit event adds them up), its jitter differs */
	for (struct bw_engine *g = e; g; g = (struct bw_engine *)g->prev) {
		__atomic_store_n(&g->pid, (long)getpid(), __ATOMIC_RELAXED);
		for (int i = 0; i < g->cfg->n_rules; i++) {
			memset(g->rt[i].stats, 0, sizeof g->rt[i].stats);
			memset(g->rt[i].flushed, 0, sizeof g->rt[i].flushed);
			for (int k = 0; k < BW_CALL_STRIPES; k++)
				g->rt[i].calls[k].n = 0;
		}
		bw_tally_after_fork(g->tally);
	}
	bw_reload_after_fork();
	bw_engine_after_fork(e);
	bw_names_after_fork();
	bw_sink_after_fork();
	bw_group_after_fork(e);
	/* in a group the slots of the connections a child inherits stay the parent's
	 * (design.md §6); a private store's copy counts them as the child's own */
	if (e->store->file)
		bw_hold_after_fork();
	bw_fleet_after_fork();
	if (e->cfg->seed == 0)
		e->seed = random_seed();
	__atomic_add_fetch(&rng_epoch, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&thread_ordinal, 0, __ATOMIC_RELAXED);
	errno = saved;
}

static void report_config_error(const struct bw_diags *diags, const char *path)
{
	const char *sink = secure_getenv("BULWARK_LOG");
	struct bw_config tmp = { .log = { .sink = BW_SINK_STDERR, .level = BW_LVL_ERROR } };
	char err[128];
	if (bw_override_log(&tmp, sink, err, sizeof err) < 0)
		tmp.log.sink = BW_SINK_STDERR;
	bw_sink_open(tmp.log.sink, tmp.log.path, LOG_USER);
	free(tmp.log.path);

	const struct bw_diag *d = diags->n ? &diags->d[0] : NULL;
	char extra[768];
	size_t n = 0;
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"file\":");
	bw_json_str(extra, sizeof extra, &n, d ? d->file : path);
	bw_json_raw(extra, sizeof extra, &n, ",\"line\":");
	bw_json_int(extra, sizeof extra, &n, d ? d->line : 0);
	bw_json_raw(extra, sizeof extra, &n, ",\"col\":");
	bw_json_int(extra, sizeof extra, &n, d ? d->col : 0);

	struct bw_event ev;
	bw_event_init(&ev, BW_EV_CONFIG_ERROR, BW_LVL_ERROR);
	ev.msg = d ? d->msg : "cannot load the policy";
	ev.extra = extra;
	struct bw_event_ctx ctx = { wall_us(), getpid(), tid(), program_invocation_short_name };
	char line[BW_EVENT_MAX];
	size_t len = bw_event_format(line, sizeof line, &ctx, &ev);
	bw_sink_write(BW_LVL_ERROR, line, len);
}

void bw_apply_overrides(struct bw_config *cfg, int report)
{
	char err[160];
	if ((bw_override_log(cfg, secure_getenv("BULWARK_LOG"), err, sizeof err) < 0 ||
	    bw_override_level(cfg, secure_getenv("BULWARK_LEVEL"), err, sizeof err) < 0 ||
	    bw_override_mode(cfg, secure_getenv("BULWARK_MODE"), err, sizeof err) < 0 ||
	    bw_override_seed(cfg, secure_getenv("BULWARK_SEED"), err, sizeof err) < 0) && report) {
		struct bw_diags d = { .n = 1 };
		strncpy(d.d[0].file, "environment", sizeof d.d[0].file - 1);
		strncpy(d.d[0].msg, err, sizeof d.d[0].msg - 1);
		report_config_error(&d, "environment");
	}
}

static void publish(const struct bw_engine *e);

static void load(void)
{
	const char *off = secure_getenv("BULWARK_DISABLE");
	if (getauxval(AT_SECURE) || (off && *off && strcmp(off, "0") != 0))
		return;
	const char *path = secure_getenv("BULWARK_CONFIG");
	struct bw_diags diags = { .n = 0 };
	/* the file as it is before it is read: a change made while it is read is seen */
	bw_reload_remember(path);
	struct bw_config *cfg = path && *path ? bw_config_load_file(path, &diags)
					      : bw_config_default();
	if (!cfg) {
		report_config_error(&diags, path ? path : "<default>");
		if (path && bw_config_wants_abort(path))
			_exit(2);
		return;
	}
	bw_apply_overrides(cfg, 1);
	/* observing without a policy file: every op on network sockets is watched, so that
	 * a report names a reset as well as a refusal (bulwark.yaml(5), BUILT-IN DEFAULT) */
	if (!(path && *path) && cfg->mode == BW_MODE_OBSERVE)
		bw_config_default_observe(cfg);
	bw_sink_open(cfg->log.sink, cfg->log.path, cfg->log.facility);
	/* a sink that could not be opened left events to stderr: at stderr's level */
	if (!cfg->log.level_given)
		cfg->log.level = bw_level_for_sink(bw_sink_kind());
	uint64_t seed = cfg->seed ? cfg->seed : random_seed();
	struct bw_engine *e = &bw_shim.first;
	if (bw_engine_init(e, cfg, &shim_env, getpid(), program_invocation_short_name, seed) < 0)
		return;
	bw_engine_set_proc(e, cmdline_hash(), (long)getppid());
	bw_shim.pid = e->pid;
	bw_group_join(e, cfg);
	bw_fleet_start(e);
	bw_fleet_settle(cfg);
	if (e->ops & (BW_OPBIT(BW_OP_SEND) | BW_OPBIT(BW_OP_RECV)))
		bw_fd_scan_inherited();
	pthread_atfork(NULL, NULL, after_fork_child);
	__atomic_store_n(&bw_shim.gens[bw_fd_gen(e->gen)], e, __ATOMIC_RELEASE);
	__atomic_store_n(&bw_shim.cur, e, __ATOMIC_RELEASE);
	__atomic_store_n(&bw_shim.life, BW_LIFE_READY, __ATOMIC_RELEASE);
	publish(e);
	bw_engine_start_event(e, BW_VERSION);
	bw_reload_arm();
}

/* What the hot path reads first: the ops with rules, ready, and the generation. */
static void publish(const struct bw_engine *e)
{
	__atomic_store_n(&bw_hot, (uint64_t)e->ops | BW_HOT_READY |
			 ((uint64_t)e->gen << BW_FDW_GEN & BW_FDW_GEN_MASK), __ATOMIC_RELEASE);
}

int bw_shim_swap(const struct bw_config *cfg)
{
	struct bw_engine *cur = __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE);
	struct bw_engine *e = cur ? calloc(1, sizeof *e) : NULL;
	if (!e || bw_engine_init_next(e, cur, cfg, cfg->seed ? cfg->seed : cur->seed) < 0) {
		free(e);
		return -1;
	}
	/* the old engine is kept: calls that began under it finish under it. A word still
	 * learned under this generation's bits is BW_GENS loads old: it forgets its rules
	 * before the bits are current again. */
	unsigned g = bw_fd_gen(e->gen);
	bw_fd_expire_gen(g);
	__atomic_store_n(&bw_shim.gens[g], e, __ATOMIC_RELEASE);
	__atomic_store_n(&bw_shim.cur, e, __ATOMIC_RELEASE);
	publish(e);
	return 0;
}

static void init_once(void)
{
	bw_guard_enter();
	bw_real_resolve();
	load();
	if (__atomic_load_n(&bw_shim.life, __ATOMIC_ACQUIRE) != BW_LIFE_READY) {
		__atomic_store_n(&bw_shim.life, BW_LIFE_OFF, __ATOMIC_RELEASE);
		__atomic_store_n(&bw_hot, 0, __ATOMIC_RELEASE);
	}
	bw_guard_leave();
}

struct bw_engine *bw_engine_wake(unsigned ops)
{
	if (bw_guarded())
		return NULL;
	if (__atomic_load_n(&bw_shim.life, __ATOMIC_ACQUIRE) == BW_LIFE_NEW)
		bw_init();
	uint64_t hot = __atomic_load_n(&bw_hot, __ATOMIC_ACQUIRE);
	return (hot & BW_HOT_READY) && (hot & ops) ? __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE)
						   : NULL;
}

void bw_init(void)
{
	int saved = errno;
	pthread_once(&once, init_once);
	errno = saved;
}

__attribute__((constructor)) static void bw_constructor(void)
{
	bw_init();
}

/* Report only; nothing is freed, since hooks can still run after us. */
__attribute__((destructor)) static void bw_destructor(void)
{
	int saved = errno;
	if (__atomic_load_n(&bw_shim.life, __ATOMIC_ACQUIRE) == BW_LIFE_READY) {
		struct bw_engine *e = __atomic_load_n(&bw_shim.cur, __ATOMIC_ACQUIRE);
		bw_engine_flush(e);
		if (e->cfg->log.summary)
			bw_engine_exit_event(e);
		bw_group_leave(e);
	}
	errno = saved;
}
