/* `bulwark status` (bulwark(1), STATUS): the live breaker and limiter state of the process trees
 * that share it (`state: { share: group }`), and their health as a health check reads
 * it: exit 0 healthy, 1 degraded, 2 unhealthy, 3 unknown. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "status_model.h"
#include "table.h"

enum { OPT_PRUNE = 256, OPT_FLEET };

static const struct option status_options[] = {
	{ "group", required_argument, NULL, 'g' },
	{ "dir", required_argument, NULL, 'd' },
	{ "format", required_argument, NULL, 'f' },
	{ "wide", no_argument, NULL, 'w' },
	{ "prune", no_argument, NULL, OPT_PRUNE },
	{ "fleet", no_argument, NULL, OPT_FLEET },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct {
	const char *name;
	int (*print)(const struct bw_status *st, FILE *out);
} formats[] = {
	{ "table", bw_status_print_table },
	{ "json", bw_status_print_json },
	{ "prometheus", bw_status_print_prom },
};

/* The `auto` directory is only trusted when it is ours, as the library trusts it: a
 * directory someone else made in /tmp could hold anything. */
static int auto_dir_ours(const char *dir)
{
	struct stat sb;
	if (lstat(dir, &sb) != 0)
		return errno == ENOENT;          /* no directory: no group, nothing to say */
	if (S_ISDIR(sb.st_mode) && sb.st_uid == geteuid())
		return 1;
	fprintf(stderr, "bulwark status: %s is not a directory of yours: not read\n", dir);
	return 0;
}

int bw_cmd_status(int argc, char **argv)
{
	int c, fmt = 0, prune = 0, fmt_given = 0, fleet = 0;
	const char *group = NULL, *dir = NULL;
	optind = 0;
	/* A usage error is "unknown" (3), as health-check plugins have it: 2 would read as
	 * "unhealthy" to whatever runs the check. */
	while ((c = getopt_long(argc, argv, ":hg:d:f:w", status_options, NULL)) != -1) {
		switch (c) {
		case 'g': group = optarg; break;
		case 'd': dir = optarg; break;
		case 'w': bw_tab_wide = 1; break;
		case OPT_PRUNE: prune = 1; break;
		case OPT_FLEET: fleet = 1; break;
		case 'f': {
			fmt_given = 1;
			size_t n = sizeof formats / sizeof formats[0];
			for (fmt = 0; (size_t)fmt < n && strcmp(formats[fmt].name, optarg) != 0; fmt++)
				;
			if ((size_t)fmt == n) {
				fprintf(stderr, "bulwark status: unknown format '%s' (table, json or "
					"prometheus)\n", optarg);
				return BW_UNKNOWN;
			}
			break;
		}
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("status", argv, c); return BW_UNKNOWN;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bulwark status: unexpected argument '%s' (see bulwark --help)\n",
			argv[optind]);
		return BW_UNKNOWN;
	}
	if (group && !*group) {
		fputs("bulwark status: --group needs a group name\n", stderr);
		return BW_UNKNOWN;
	}
	if (dir && !*dir) {
		fputs("bulwark status: --dir needs a directory\n", stderr);
		return BW_UNKNOWN;
	}
	if (prune && fmt_given) {
		fputs("bulwark status: --prune prints what it removes, in no --format\n", stderr);
		return BW_UNKNOWN;
	}

	static struct bw_status st;
	memset(&st, 0, sizeof st);
	st.want = group;
	if (bw_status_dir(dir, st.dir, sizeof st.dir) != 0) {
		fputs("bulwark status: the state directory's name is too long\n", stderr);
		return BW_UNKNOWN;
	}
	int status = BW_UNKNOWN;
	if (prune) {
		/* its own exit status: 0 done, 1 something could not be removed or read */
		status = 1;
		if ((dir || auto_dir_ours(st.dir)) && bw_status_read(&st, group) == 0)
			status = bw_status_prune(&st);
		bw_status_free(&st);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			perror("bulwark status: stdout");
			return 1;
		}
		return status;
	}
	if (dir || auto_dir_ours(st.dir)) {
		if (bw_status_read(&st, group) == 0)
			status = (int)st.health;
	} else {
		st.health = BW_UNKNOWN;
	}
	if (fleet) {
		if (fmt == 2) {
			fputs("bulwark status: --fleet prints a table or json\n", stderr);
			bw_status_free(&st);
			return BW_UNKNOWN;
		}
		status = bw_status_print_fleet(&st, fmt == 1, stdout);
		bw_status_free(&st);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			perror("bulwark status: stdout");
			return BW_UNKNOWN;
		}
		return status;
	}
	int rc = formats[fmt].print(&st, stdout);
	bw_status_free(&st);
	/* A truncated answer must not pass for a health reading. */
	if (rc != 0 || fflush(stdout) != 0 || ferror(stdout)) {
		perror("bulwark status: stdout");
		return BW_UNKNOWN;
	}
	return status;
}
