/* The group's state file, <state dir>/<group>.state.
 *
 * Whether a process joins a group's file, replaces it or removes it is decided under an
 * exclusive flock on the state directory, held for the few system calls that takes. The
 * kernel drops the lock when its holder dies, so none is ever left behind, and two
 * processes that start together never both replace a dead group's file (each would end up
 * alone in a file of its own). A creator lays its file out and takes its own slot before
 * it stores the magic, all under the lock: a file without the magic found under the lock
 * was left by a creator that died.
 *
 * A group is alive while a process in its table is: its pid exists, is no zombie, and
 * started at the clock tick its slot recorded (a pid handed to another process since does
 * not count). A group named after its policy (plain LD_PRELOAD: no one named it) ends with
 * its processes: the last one out removes the file, and when the last one left without
 * exit handlers (_exit, as dash does, or a crash) the next process of that policy finds
 * the group dead and starts afresh, so its open breakers do not outlive it. A group named
 * in BULWARK_GROUP belongs to whoever named it (`bulwark run`, which removes the file when
 * its tree ends): its processes may come and go.
 *
 * Every path is opened without following a symbolic link and checked after opening: the
 * directory must be the user's and closed to others, the file a regular file of the user's.
 * Anything else, and any file that cannot be trusted, is one warning, and the process keeps
 * its own state; a file is replaced only when no live process can be using it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "events.h"
#include "clock.h"
#include "group.h"
#include "keyed.h"
#include "real.h"
#include "shared.h"

/* far above any policy's layout; a larger file is not one of ours */
#define MAX_STATE_BYTES ((off_t)1 << 30)
/* The directory lock is held for microseconds; a holder stopped (SIGSTOP, a debugger)
 * costs the others this long once, then they go on with state of their own. */
#define JOIN_WAIT_US 2000000
#define LEAVE_WAIT_US 500000

static void *map;
static char dir[PATH_MAX];
static char name[BW_GROUP_MAX + sizeof BW_STATE_SUFFIX];
static dev_t file_dev;
static ino_t file_ino;
static int own_group;            /* named after the policy: the last one out cleans up */
static int slot = -1;

/* Lock holders: a pid that exists. Cheap, since every contended lock asks. */
static int alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static int proc_stat(const char *path, char *state, unsigned long long *start)
{
	char buf[1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	BW_REAL(close)(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return bw_proc_stat_parse(buf, state, start);
}

/* This process's start in clock ticks after boot (low 32 bits; 0: not known). */
static uint32_t own_start(void)
{
	char state;
	unsigned long long start;
	return proc_stat("/proc/self/stat", &state, &start) == 0 ? (uint32_t)start : 0;
}

/* The process that took slot p still runs. */
static int member_alive(const struct bw_shm_proc *p)
{
	char path[48], state;
	unsigned long long start;
	if (p->pid <= 0 || (kill((pid_t)p->pid, 0) < 0 && errno == ESRCH))
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)p->pid);
	if (proc_stat(path, &state, &start) < 0)
		return 1;                        /* no /proc: what kill says */
	if (state == 'Z' || state == 'X' || state == 'x')
		return 0;
	return p->start_ticks == 0 || p->start_ticks == (uint32_t)start;
}

/* The same, for the store, which reclaims the bulkhead slots of members that died. */
static int member_alive_of(const void *p)
{
	return member_alive(p);
}

/* Another process of the table still runs. */
static int others_alive(const struct bw_shm_proc *procs, size_t n, long self)
{
	for (size_t i = 0; i < n; i++)
		if (procs[i].pid > 0 && procs[i].pid != self && member_alive(&procs[i]))
			return 1;
	return 0;
}

static void warn(struct bw_engine *e, const char *key, const char *path, const char *fmt, ...)
{
	char why[512], msg[640], extra[PATH_MAX + 32];
	size_t n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof msg, "state.share: group: %s; each process keeps its own state", why);
	extra[0] = '\0';
	if (key) {
		bw_json_raw(extra, sizeof extra, &n, "\"");
		bw_json_raw(extra, sizeof extra, &n, key);
		bw_json_raw(extra, sizeof extra, &n, "\":");
		bw_json_str(extra, sizeof extra, &n, path);
	}
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_WARNING, BW_LVL_WARN);
	ev.msg = msg;
	ev.extra = n ? extra : NULL;
	bw_engine_emit(e, NULL, &ev);
}

/* The state directory, made if missing, opened without following a link and checked to
 * be a directory of ours that no one else can enter: the files in it are mapped into the
 * program. Its descriptor, or -1 with why. */
static int open_dir(char *why, size_t cap)
{
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, cap, "cannot be made: %s", strerror(errno));
		return -1;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(why, cap, "is a symbolic link");
		else if (err == ENOTDIR)
			snprintf(why, cap, "is not a directory");
		else
			snprintf(why, cap, "cannot be opened: %s", strerror(err));
		return -1;
	}
	why[0] = '\0';
	if (fstat(fd, &st) < 0)
		snprintf(why, cap, "cannot be read: %s", strerror(errno));
	else if (st.st_uid != geteuid())
		snprintf(why, cap, "belongs to another user (uid %u)", (unsigned)st.st_uid);
	else if (st.st_mode & 077)
		snprintf(why, cap, "is open to other users (mode %04o)",
			 (unsigned)(st.st_mode & 07777));
	if (why[0]) {
		BW_REAL(close)(fd);
		return -1;
	}
	return fd;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Take the directory lock, waiting at most wait_us: never blocks a program for good. */
static int lock_dir(int dfd, int64_t wait_us)
{
	int64_t until = mono_us() + wait_us;
	for (int i = 0; i < 100000; i++) {
		if (flock(dfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (mono_us() > until)
			return -1;
		struct timespec ts = { 0, 500 * 1000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void unlock_dir(int dfd)
{
	/* explicitly: a child forked meanwhile shares the descriptor, and closing ours
	 * alone would leave the lock held by its copy */
	flock(dfd, LOCK_UN);
	BW_REAL(close)(dfd);
}

static void fill_slot(struct bw_shm_proc *p, const struct bw_engine *e, uint32_t start)
{
	memset(p, 0, sizeof *p);
	p->pid = (int32_t)e->pid;
	p->start_ticks = start;
	p->started_us = bw_clock_us(CLOCK_REALTIME);
	snprintf(p->prog, sizeof p->prog, "%s", e->prog);
}

/* Whether the slot taken was the one of the image this process exec'ed from: the
 * bulkhead slots that image held are given back once the store can (bw_group_join). */
static int exec_slot;

static void take_slot(struct bw_engine *e)
{
	struct bw_shm_header *h = map;
	struct bw_shm_proc *procs = bw_shm_procs(map);
	uint32_t start = own_start();
	slot = -1;
	exec_slot = 0;
	if (bw_spin_lock(&h->lock, (int)e->pid, alive) < 0)
		return;
	/* a process that exec'ed keeps its pid and had a slot already: take that one */
	for (int i = 0; i < BW_SHM_PROCS && slot < 0; i++)
		if (procs[i].pid == (int32_t)e->pid)
			slot = i;
	if (slot >= 0) {
		snprintf(procs[slot].prog, sizeof procs[slot].prog, "%s", e->prog);
		exec_slot = 1;
	} else {
		for (int i = 0; i < BW_SHM_PROCS && slot < 0; i++)
			if (procs[i].pid == 0 || !alive(procs[i].pid))
				fill_slot(&procs[slot = i], e, start);
	}
	bw_spin_unlock(&h->lock);
}

/* Make the group's file: laid out, with our slot taken, then published. */
static void *create(int dfd, struct bw_engine *e, const struct bw_config *cfg,
		    const char *group, size_t size, char *why, size_t cap)
{
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno != EEXIST)         /* EEXIST: made since by someone not locking */
			snprintf(why, cap, "the group's state file cannot be made: %s",
				 strerror(errno));
		return NULL;
	}
	struct stat st;
	void *m = MAP_FAILED;
	int err = 0;
	if (fstat(fd, &st) < 0 || ftruncate(fd, (off_t)size) < 0)
		err = errno;
	else if ((m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		err = errno;
	BW_REAL(close)(fd);
	if (m == MAP_FAILED) {
		unlinkat(dfd, name, 0);
		snprintf(why, cap, "the group's state file cannot be made: %s", strerror(err));
		return NULL;
	}
	bw_shm_format(m, size, cfg, group, cfg->path, bw_clock_us(CLOCK_REALTIME));
	fill_slot(&bw_shm_procs(m)[0], e, own_start());
	slot = 0;
	bw_shm_publish(m);
	file_dev = st.st_dev;
	file_ino = st.st_ino;
	return m;
}

/* Whether a live process has a slot in the file, read with pread: 1, 0, or -1 when the
 * process table is not where this version puts it (nothing can be told). Slots past a
 * file cut short are not there to count. */
static int table_live(int fd, const struct bw_shm_header *h, off_t fsize)
{
	struct bw_shm_proc procs[BW_SHM_PROCS];
	if (h->procs_off != bw_shm_procs_offset() || h->n_procs != BW_SHM_PROCS)
		return -1;
	ssize_t got = 0;
	if ((off_t)h->procs_off < fsize)
		got = pread(fd, procs, sizeof procs, (off_t)h->procs_off);
	if (got < 0)
		return -1;
	return others_alive(procs, (size_t)got / sizeof procs[0], 0);
}

enum { JOIN, REPLACE, REFUSE };

/* What to do with the existing file at fd, under the directory lock: join it (mapped in
 * *m), replace it (no live process can be using it), or refuse it (why). */
static int judge(int fd, const struct bw_config *cfg, void **m, char *why, size_t cap)
{
	struct stat st;
	struct bw_shm_header h;
	if (fstat(fd, &st) < 0) {
		snprintf(why, cap, "the group's state file cannot be read: %s", strerror(errno));
		return REFUSE;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, cap, "the group's state file is not a regular file");
		return REFUSE;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, cap, "the group's state file belongs to another user (uid %u)",
			 (unsigned)st.st_uid);
		return REFUSE;
	}
	if (st.st_size < (off_t)sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
	    h.magic != BW_SHM_MAGIC)
		return REPLACE;              /* never published: its creator died laying it out */
	if (h.version != BW_SHM_VERSION) {
		snprintf(why, cap, "the group's state file was made by another version of "
			 "bulwark (%u)", (unsigned)h.version);
		return REFUSE;
	}
	int live = table_live(fd, &h, st.st_size);
	const char *bad = NULL;
	void *mem = MAP_FAILED;
	if (live < 0)
		bad = "layout differs from this bulwark's (process table)";
	else if (st.st_size > MAX_STATE_BYTES)
		bad = "too large to be a state file";
	else if ((uint64_t)st.st_size < h.size)
		bad = "shorter than its header says";     /* mapped, it would raise SIGBUS */
	else if ((mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			     0)) == MAP_FAILED) {
		snprintf(why, cap, "the group's state file cannot be mapped: %s", strerror(errno));
		return REFUSE;
	} else {
		bad = bw_shm_verify(mem, (size_t)st.st_size);
	}
	if (!bad && bw_shm_check(mem, (size_t)st.st_size, cfg) == 0 && (live || !own_group)) {
		*m = mem;
		file_dev = st.st_dev;
		file_ino = st.st_ino;
		return JOIN;
	}
	if (mem != MAP_FAILED)
		munmap(mem, (size_t)st.st_size);
	if (bad && live) {
		snprintf(why, cap, "the group's state file is damaged: %s", bad);
		return REFUSE;
	}
	if (!bad && live) {
		snprintf(why, cap, "the group's state file is in use by processes of another "
			 "policy (another policy under the same group?)");
		return REFUSE;
	}
	return REPLACE;              /* a dead group's, or one no one can be using */
}

/* Under the directory lock: the group's file mapped, our slot taken; NULL with why. */
static void *join_locked(int dfd, struct bw_engine *e, const struct bw_config *cfg,
			 const char *group, char *why, size_t cap)
{
	size_t size = bw_shm_size(cfg);
	why[0] = '\0';
	for (int round = 0; round < 3; round++) {
		int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT) {
				void *m = create(dfd, e, cfg, group, size, why, cap);
				if (m || why[0])
					return m;
				continue;
			}
			if (errno == ELOOP)
				snprintf(why, cap, "the group's state file is a symbolic link");
			else
				snprintf(why, cap, "the group's state file cannot be opened: %s",
					 strerror(errno));
			return NULL;
		}
		void *m = NULL;
		int verdict = judge(fd, cfg, &m, why, cap);
		BW_REAL(close)(fd);
		if (verdict == JOIN) {
			map = m;
			take_slot(e);
			return m;
		}
		if (verdict == REFUSE)
			return NULL;
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
			snprintf(why, cap, "the group's state file cannot be replaced: %s",
				 strerror(errno));
			return NULL;
		}
	}
	snprintf(why, cap, "the group's state file kept changing under us");
	return NULL;
}

int bw_group_join(struct bw_engine *e, const struct bw_config *cfg)
{
	char group[BW_GROUP_MAX + 1], why[384];
	if (cfg->state.share < BW_SHARE_GROUP)   /* fleet mode shares a group too */
		return 0;
	/* a path cut short names another directory: too long is refused */
	if (bw_state_dir(cfg, secure_getenv("XDG_RUNTIME_DIR"), (unsigned)getuid(), dir,
			 sizeof dir) < 0) {
		warn(e, NULL, NULL, "the state directory's path is too long (at most %d bytes)",
		     BW_STATE_DIR_MAX);
		return -1;
	}
	if (bw_group_name(cfg, secure_getenv("BULWARK_GROUP"), (unsigned)getuid(), group,
			  sizeof group, &own_group) < 0) {
		warn(e, NULL, NULL, "BULWARK_GROUP is too long (at most %d bytes)", BW_GROUP_MAX);
		return -1;
	}
	snprintf(name, sizeof name, "%s" BW_STATE_SUFFIX, group);
	int dfd = open_dir(why, sizeof why);
	if (dfd < 0) {
		warn(e, "dir", dir, "the state directory %s", why);
		return -1;
	}
	void *m = NULL;
	if (lock_dir(dfd, JOIN_WAIT_US) < 0)
		snprintf(why, sizeof why, "the state directory stayed locked by another process");
	else
		m = join_locked(dfd, e, cfg, group, why, sizeof why);
	unlock_dir(dfd);
	if (!m) {
		char path[PATH_MAX + sizeof name];
		snprintf(path, sizeof path, "%s/%s", dir, name);
		warn(e, "file", path, "%s", why);
		return -1;
	}
	map = m;
	bw_store_share(e->store, map, e->pid, alive);
	e->store->proc = slot;
	e->store->member_alive = member_alive_of;
	/* connections inherited across exec hold no slot: the new image cannot know them,
	 * and so could never give them back */
	if (exec_slot)
		bw_store_give_ledger(e->store, slot);
	return 0;
}

uint64_t bw_group_reloads(void)
{
	struct bw_shm_header *h = __atomic_load_n(&map, __ATOMIC_ACQUIRE);
	return h ? __atomic_load_n(&h->reloads, __ATOMIC_ACQUIRE) : 0;
}

void bw_group_after_fork(struct bw_engine *e)
{
	if (!map)
		return;
	take_slot(e);
	e->store->proc = slot;
}

/* Fleet mode's files beside the state file (shim/fleet.c) go with the group. */
static void unlink_fleet_files(int dfd)
{
	static const char *const suffix[] = { ".fleet", ".fleet.lock" };
	char f[sizeof name + 16];
	size_t n = strlen(name) - (sizeof BW_STATE_SUFFIX - 1);
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(f, sizeof f, "%.*s%s", (int)n, name, suffix[i]);
		unlinkat(dfd, f, 0);
	}
}

void bw_group_leave(struct bw_engine *e)
{
	if (!map || slot < 0)
		return;
	/* the slots its connections held go back with it: the store's own accounting, so
	 * that a close another thread makes after this gives nothing back twice */
	bw_store_give_ledger(e->store, slot);
	e->store->proc = -1;
	struct bw_shm_header *h = map;
	struct bw_shm_proc *procs = bw_shm_procs(map);
	int self = (int)getpid(), dfd = -1, locked = 0;
	/* the decision that the group ends is taken under the directory lock, as joining
	 * is: a process joining now either is in the table already or waits for us */
	if (own_group) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		locked = dfd >= 0 && lock_dir(dfd, LEAVE_WAIT_US) == 0;
	}
	if (bw_spin_lock(&h->lock, self, alive) == 0) {
		for (int i = 0; i < BW_SHM_PROCS; i++)
			if (procs[i].pid == self)
				procs[i].pid = 0;
		bw_spin_unlock(&h->lock);
	}
	struct stat st;
	if (locked && !others_alive(procs, BW_SHM_PROCS, self) &&
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == file_dev &&
	    st.st_ino == file_ino) {
		unlinkat(dfd, name, 0);
		unlink_fleet_files(dfd);
	}
	if (dfd >= 0)
		unlock_dir(dfd);
	slot = -1;
}

int bw_group_sibling(const char *suffix, char *buf, size_t cap, char *group, size_t gcap)
{
	size_t n = strlen(name) - (sizeof BW_STATE_SUFFIX - 1);
	if (!map || slot < 0)
		return -1;
	if (group && snprintf(group, gcap, "%.*s", (int)n, name) >= (int)gcap)
		return -1;
	int w = snprintf(buf, cap, "%s/%.*s%s", dir, (int)n, name, suffix);
	return w < 0 || (size_t)w >= cap ? -1 : 0;
}
