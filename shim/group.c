/* The group's state file. The first process creates it (O_EXCL), sizes and lays it out and
 * publishes it by writing the magic last; the others wait briefly for the magic, then map
 * it. Every process takes a slot in its process table. A file left unfinished or stale by
 * processes that died is replaced, never mapped past its end. `bulwark run` names the group
 * (BULWARK_GROUP) and removes the file when the tree ends; without it, processes sharing a
 * policy file form a group named after that file and the user, and the last to leave
 * removes it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "group.h"
#include "keyed.h"
#include "real.h"
#include "shared.h"

static void *map;
static size_t map_size;
static char path[512];
static int own_group;            /* named after the policy: the last one out cleans up */
static int slot = -1;

static int alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void warn(struct bw_engine *e, const char *msg)
{
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_WARNING, BW_LVL_WARN);
	ev.msg = msg;
	bw_engine_emit(e, NULL, &ev);
}

/* $XDG_RUNTIME_DIR/bulwark, else /tmp/bulwark-UID; made 0700 and checked to be ours. */
static int state_dir(const struct bw_config *cfg, char *buf, size_t cap)
{
	bw_state_dir(cfg, secure_getenv("XDG_RUNTIME_DIR"), (unsigned)getuid(), buf, cap);
	mkdir(buf, 0700);
	struct stat st;
	if (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077))
		return -1;
	return 0;
}

static void group_name(const struct bw_config *cfg, char *buf, size_t cap)
{
	const char *g = secure_getenv("BULWARK_GROUP");
	if (g && *g && !strchr(g, '/')) {
		snprintf(buf, cap, "%s", g);
		return;
	}
	own_group = 1;
	uint64_t h = bw_key_bytes(cfg->path, strlen(cfg->path), getuid());
	snprintf(buf, cap, "policy-%016llx", (unsigned long long)h);
}

enum { FILE_READY, FILE_UNFINISHED, FILE_OTHER };

/* What the file holds, read with pread: mapping a file shorter than the layout would
 * raise SIGBUS in the program at the first touch past its end. */
static int file_state(int fd, const struct bw_config *cfg, size_t size)
{
	struct bw_shm_header h;
	struct stat st;
	if (fstat(fd, &st) < 0 || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
	    h.magic != BW_SHM_MAGIC)
		return FILE_UNFINISHED;
	if (h.version != BW_SHM_VERSION || h.size != size || (size_t)st.st_size < size ||
	    h.n_rules != (uint32_t)cfg->n_rules)
		return FILE_OTHER;
	return FILE_READY;
}

/* Whether a live process has a slot in a finished file (of whatever layout). */
static int in_use(int fd)
{
	struct bw_shm_header h;
	struct bw_shm_proc procs[BW_SHM_PROCS];
	if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
	    pread(fd, procs, sizeof procs, (off_t)h.procs_off) != (ssize_t)sizeof procs)
		return 0;
	for (int i = 0; i < BW_SHM_PROCS; i++)
		if (procs[i].pid > 0 && alive(procs[i].pid))
			return 1;
	return 0;
}

/* Last written over a second ago: a creator lays a file out within milliseconds, so an
 * unfinished one this old was left by a creator that died. */
static int old_file(int fd)
{
	struct stat st;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return fstat(fd, &st) == 0 && now.tv_sec - st.st_mtim.tv_sec > 1;
}

static void *create_state(int fd, const struct bw_config *cfg, const char *group, size_t size)
{
	void *m = MAP_FAILED;
	if (ftruncate(fd, (off_t)size) == 0)
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	BW_REAL(close)(fd);
	if (m == MAP_FAILED) {
		unlink(path);
		return NULL;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	bw_shm_format(m, size, cfg, group, cfg->path,
		      (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000);
	return m;
}

/* The first process creates the file; the others wait for it to be laid out (up to 1 s).
 * A file that is never finished (its creator died while laying it out) or that was laid
 * out for another policy and has no live process left is removed, and made again. */
static void *open_state(const struct bw_config *cfg, const char *group, size_t size)
{
	for (int round = 0; round < 2; round++) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			return create_state(fd, cfg, group, size);
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;        /* removed since: make it */
			return NULL;
		}
		int st = file_state(fd, cfg, size);
		for (int i = 0; i < 200 && st == FILE_UNFINISHED && !old_file(fd); i++) {
			struct timespec ts = { 0, 5 * 1000000 };
			nanosleep(&ts, NULL);
			st = file_state(fd, cfg, size);
		}
		if (st == FILE_READY) {
			void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			BW_REAL(close)(fd);
			if (m == MAP_FAILED)
				return NULL;
			if (bw_shm_check(m, size, cfg) == 0)
				return m;
			munmap(m, size);
			st = FILE_OTHER;         /* same sizes, other rule names */
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				continue;
		}
		int stale = st == FILE_UNFINISHED || !in_use(fd);
		/* remove the very file judged, not one made since by someone else */
		struct stat judged, now;
		if (stale && fstat(fd, &judged) == 0 && lstat(path, &now) == 0 &&
		    judged.st_ino == now.st_ino && judged.st_dev == now.st_dev)
			unlink(path);
		BW_REAL(close)(fd);
		if (!stale)
			return NULL;
	}
	return NULL;
}

static void take_slot(struct bw_engine *e)
{
	struct bw_shm_header *h = map;
	struct bw_shm_proc *procs = bw_shm_procs(map);
	slot = -1;
	if (bw_spin_lock(&h->lock, (int)e->pid, alive) < 0)
		return;
	/* a process that exec'ed keeps its pid and had a slot already: take that one */
	for (int i = 0; i < BW_SHM_PROCS && slot < 0; i++)
		if (procs[i].pid == (int32_t)e->pid)
			slot = i;
	for (int i = 0; i < BW_SHM_PROCS && slot < 0; i++) {
		if (procs[i].pid == 0 || !alive(procs[i].pid)) {
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			memset(&procs[i], 0, sizeof procs[i]);
			procs[i].pid = (int32_t)e->pid;
			procs[i].started_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
			snprintf(procs[i].prog, sizeof procs[i].prog, "%s", e->prog);
			slot = i;
		}
	}
	if (slot >= 0)
		snprintf(procs[slot].prog, sizeof procs[slot].prog, "%s", e->prog);
	bw_spin_unlock(&h->lock);
}

int bw_group_join(struct bw_engine *e, const struct bw_config *cfg)
{
	char dir[256], group[128];
	if (cfg->state.share != BW_SHARE_GROUP)
		return 0;
	if (state_dir(cfg, dir, sizeof dir) < 0) {
		warn(e, "state.share: group: the state directory is not a private directory of "
			"this user; each process keeps its own state");
		return -1;
	}
	group_name(cfg, group, sizeof group);
	snprintf(path, sizeof path, "%s/%s.state", dir, group);
	size_t size = bw_shm_size(cfg);
	map = open_state(cfg, group, size);
	if (!map) {
		warn(e, "state.share: group: cannot map the group's state file (another policy "
			"under the same group?); each process keeps its own state");
		return -1;
	}
	map_size = size;
	bw_engine_share(e, map, e->pid, alive);
	take_slot(e);
	return 0;
}

void bw_group_after_fork(struct bw_engine *e)
{
	if (map)
		take_slot(e);
}

void bw_group_leave(void)
{
	if (!map || slot < 0)
		return;
	struct bw_shm_header *h = map;
	struct bw_shm_proc *procs = bw_shm_procs(map);
	int self = (int)getpid(), last = 1;
	if (bw_spin_lock(&h->lock, self, alive) < 0)
		return;
	if (procs[slot].pid == self)
		procs[slot].pid = 0;
	for (int i = 0; i < BW_SHM_PROCS; i++)
		if (procs[i].pid && procs[i].pid != self && alive(procs[i].pid))
			last = 0;
	if (last && own_group)
		unlink(path);
	bw_spin_unlock(&h->lock);
	slot = -1;
}
