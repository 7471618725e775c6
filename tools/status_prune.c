/* `bulwark status --prune`: remove the state files that stale groups left behind (a tree
 * killed before `bulwark run` could remove its file, a file on a /tmp that outlived a
 * reboot).
 *
 * A group is stale when none of its processes is alive (status_read.c). Between that
 * reading and the removal a process may join the group: the library joins, creates and
 * replaces a group's file only while it holds an exclusive flock on the state directory
 * (shim/group.c), so each file is opened and its processes counted again under that lock,
 * and removed only if it is still the same file and still stale. A process joining after
 * the removal makes a new file, as it would for a new group.
 *
 * A group named by `bulwark run` (run-PID-MICROSECONDS) belongs to that run: its processes
 * may all have ended while the run goes on and starts more, which would find the file and
 * its breakers again. Such a file is kept while its `bulwark run` is alive. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "status_model.h"

/* As long as a library process waits for the lock before it keeps state of its own. */
#define LOCK_WAIT_US 2000000

static int lock_dir(int dfd)
{
	int64_t until = bw_clock_us(CLOCK_MONOTONIC) + LOCK_WAIT_US;
	for (int i = 0; i < 100000; i++) {
		if (flock(dfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    bw_clock_us(CLOCK_MONOTONIC) > until)
			return -1;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* The `bulwark run` that named the group, while it runs: its pid, else 0. */
static long run_owner(const char *group, int64_t boot_us)
{
	long pid;
	int64_t named_us;
	int end = 0;
	if (sscanf(group, "run-%ld-%" SCNd64 "%n", &pid, &named_us, &end) != 2 ||
	    group[end] != '\0' || pid <= 0)
		return 0;
	/* alive, and started before it named the group: not a pid reused since */
	struct bw_st_proc p = { .pid = pid, .started_us = named_us };
	return bw_st_proc_alive(&p, boot_us) ? pid : 0;
}

enum { REMOVED, KEPT, FAILED };

/* Under the directory lock: remove base if it is still the stale group's state file. */
static int prune_one(int dfd, const struct bw_st_group *g, const char *base, int64_t boot_us)
{
	int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			printf("gone %s (group %s: removed meanwhile)\n", g->file, g->group);
			return KEPT;
		}
		fprintf(stderr, "bulwark status: %s: %s\n", g->file, strerror(errno));
		return FAILED;
	}
	struct stat st, now;
	const char *why = NULL;
	int live = -1;
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (st.st_uid != geteuid())
		why = "belongs to another user";
	else
		live = bw_st_fd_live(fd, boot_us, &why);
	close(fd);
	if (live < 0) {
		/* not one of ours, or not readable as one: never removed */
		printf("kept %s (group %s: %s)\n", g->file, g->group, why ? why : "unreadable");
		return KEPT;
	}
	if (live) {
		printf("kept %s (group %s: a process joined it since)\n", g->file, g->group);
		return KEPT;
	}
	/* the name may have been given to another file between our open and now */
	if (fstatat(dfd, base, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != st.st_dev ||
	    now.st_ino != st.st_ino) {
		printf("kept %s (group %s: replaced meanwhile)\n", g->file, g->group);
		return KEPT;
	}
	if (unlinkat(dfd, base, 0) != 0) {
		fprintf(stderr, "bulwark status: %s: cannot be removed: %s\n", g->file,
			strerror(errno));
		return FAILED;
	}
	printf("removed %s (group %s: %zu %s, all gone)\n", g->file, g->group, g->n_procs,
	       g->n_procs == 1 ? "process" : "processes");
	return REMOVED;
}

int bw_status_prune(const struct bw_status *st)
{
	size_t removed = 0, kept = 0, failed = 0;
	int64_t boot_us = bw_st_boot_us();
	int dfd = -1;
	if (st->stale)
		dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->stale && dfd < 0) {
		fprintf(stderr, "bulwark status: %s: %s\n", st->dir, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		const char *base = strrchr(g->file, '/');
		base = base ? base + 1 : g->file;
		if (g->live)
			continue;
		long owner = run_owner(g->group, boot_us);
		if (owner) {
			printf("kept %s (group %s: its bulwark run, pid %ld, still runs)\n", g->file,
			       g->group, owner);
			kept++;
			continue;
		}
		if (lock_dir(dfd) != 0) {
			fprintf(stderr, "bulwark status: %s stayed locked by a process joining a "
				"group: %s left alone\n", st->dir, g->file);
			failed++;
			continue;
		}
		switch (prune_one(dfd, g, base, boot_us)) {
		case REMOVED: removed++; break;
		case KEPT: kept++; break;
		default: failed++; break;
		}
		flock(dfd, LOCK_UN);
	}
	if (dfd >= 0)
		close(dfd);
	printf("%zu removed, %zu kept, %zu live group%s left alone\n", removed, kept + failed,
	       st->live, st->live == 1 ? "" : "s");
	return failed ? 1 : 0;
}
