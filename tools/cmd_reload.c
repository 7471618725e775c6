/* `bulwark reload` (bulwark(1), RELOAD): ask every process of a group that shares state
 * (`state: { share: group }`) to read its policy file again now, by adding one to the
 * reload count in the group's state file, which each process watches on the path where
 * it looks at its policy file (docs/design.md §2.2). A process outside a group needs no
 * asking: it reads its file again when the file changes. Exit 0 when the group was asked,
 * 1 when there is nothing to reload, 2 on a usage error. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "shared.h"
#include "status_model.h"

#define NOTHING 1

static const struct option reload_options[] = {
	{ "group", required_argument, NULL, 'g' },
	{ "dir", required_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One more in the group's count; the count after, or 0 with a message. */
static uint64_t bump(const char *path)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bulwark reload: %s: %s\n", path, strerror(errno));
		return 0;
	}
	struct stat st;
	struct bw_shm_header h;
	uint64_t after = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_size < (off_t)sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
	    h.magic != BW_SHM_MAGIC || h.version != BW_SHM_VERSION) {
		fprintf(stderr, "bulwark reload: %s: not a state file of this bulwark's, or not "
			"yours\n", path);
	} else {
		/* the processes read the count through their mappings: added to atomically
		 * through one of our own */
		void *m = mmap(NULL, sizeof h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			fprintf(stderr, "bulwark reload: %s: %s\n", path, strerror(errno));
		} else {
			after = __atomic_add_fetch(&((struct bw_shm_header *)m)->reloads, 1,
						   __ATOMIC_ACQ_REL);
			munmap(m, sizeof h);
		}
	}
	close(fd);
	return after;
}

int bw_cmd_reload(int argc, char **argv)
{
	int c;
	const char *group = NULL, *dir = NULL;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hg:d:", reload_options, NULL)) != -1) {
		switch (c) {
		case 'g': group = optarg; break;
		case 'd': dir = optarg; break;
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("reload", argv, c); return BW_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulwark reload: unexpected argument '%s' (see bulwark --help)\n",
			argv[optind]);
		return BW_EXIT_USAGE;
	}
	if (!group) {
		fputs("bulwark reload: nothing to reload without a group: name one with --group ID "
		      "(bulwark status lists them); a process that shares no state reads its "
		      "policy file again by itself when the file changes\n", stderr);
		return NOTHING;
	}
	if (!*group || strchr(group, '/') || strlen(group) > BW_GROUP_MAX) {
		fprintf(stderr, "bulwark reload: '%s' is not a group name\n", group);
		return BW_EXIT_USAGE;
	}
	if (dir && !*dir) {
		fputs("bulwark reload: --dir needs a directory\n", stderr);
		return BW_EXIT_USAGE;
	}

	static struct bw_status st;
	memset(&st, 0, sizeof st);
	st.want = group;
	if (bw_status_dir(dir, st.dir, sizeof st.dir) != 0) {
		fputs("bulwark reload: the state directory's name is too long\n", stderr);
		return BW_EXIT_USAGE;
	}
	int rc = NOTHING;
	if (bw_status_read(&st, group) != 0 || st.n_groups == 0) {
		if (!st.dir_error)
			fprintf(stderr, "bulwark reload: no group %s in %s: nothing to reload\n",
				group, st.dir);
	} else if (!st.groups[0].live) {
		fprintf(stderr, "bulwark reload: group %s has no live process: nothing to "
			"reload\n", group);
	} else {
		uint64_t n = bump(st.groups[0].file);
		if (n) {
			printf("bulwark reload: group %s: %zu process%s asked to read %s again "
			       "(reload %llu)\n", st.groups[0].group, st.groups[0].alive,
			       st.groups[0].alive == 1 ? "" : "es",
			       st.groups[0].policy[0] ? st.groups[0].policy : "its policy",
			       (unsigned long long)n);
			rc = 0;
		}
	}
	bw_status_free(&st);
	return rc;
}
