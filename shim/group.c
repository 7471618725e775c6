/* The group's state file. The first process creates it (O_EXCL), sizes and lays it out and
 * publishes it by writing the magic last; the others wait briefly for the magic, then map
 * it. Every process takes a slot in its process table. `bulwark run` names the group
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

static void *open_state(const struct bw_config *cfg, const char *group, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int created = fd >= 0;
	if (!created)
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	if (created && ftruncate(fd, (off_t)size) < 0) {
		unlink(path);
		BW_REAL(close)(fd);
		return NULL;
	}
	/* a file another process is still sizing: wait for it, a little */
	struct stat st;
	for (int i = 0; !created && i < 200; i++) {
		if (fstat(fd, &st) == 0 && (size_t)st.st_size >= size)
			break;
		struct timespec ts = { 0, 5 * 1000000 };
		nanosleep(&ts, NULL);
	}
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	BW_REAL(close)(fd);
	if (m == MAP_FAILED)
		return NULL;
	if (created) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		bw_shm_format(m, size, cfg, group, cfg->path,
			      (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000);
		return m;
	}
	for (int i = 0; i < 200; i++) {
		if (bw_shm_check(m, size, cfg) == 0)
			return m;
		struct timespec ts = { 0, 5 * 1000000 };
		nanosleep(&ts, NULL);
	}
	munmap(m, size);
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
