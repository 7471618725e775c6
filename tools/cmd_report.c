/* `bulwark report`: merge the event logs of many processes into one summary per rule and
 * destination. Reading never stops at a bad line: logs shared with a program's stderr,
 * or cut short by a crash, are what this is run on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "cli.h"
#include "fx.h"
#include "report.h"

#define EXIT_UNREADABLE 1

enum { OPT_REPLAY = 256, OPT_PID };

static const struct option report_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ "wide", no_argument, NULL, 'w' },
	{ "replay", no_argument, NULL, OPT_REPLAY },
	{ "config", required_argument, NULL, 'c' },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define FMT_HTML 3
static const struct {
	const char *name;
	int (*print)(struct bw_report *r, FILE *out);
} formats[] = {
	{ "table", bw_report_print_table },
	{ "json", bw_report_print_json },
	{ "prometheus", bw_report_print_prom },
	{ "html", NULL },        /* needs the events too: bw_report_print_html */
};

/* One FILE argument ("-" is standard input); 0, or -1 if it could not be read whole. */
static int read_one(struct bw_report *r, const char *path)
{
	if (strcmp(path, "-") == 0)
		return bw_report_read(r, stdin, "<stdin>");
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "bulwark report: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = bw_report_read(r, f, path);
	fclose(f);
	return rc;
}

int bw_cmd_report(int argc, char **argv)
{
	int c, fmt = 0, wide = 0, replay = 0, fmt_given = 0;
	const char *base_path = NULL;
	long long pid = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hf:wc:", report_options, NULL)) != -1) {
		switch (c) {
		case 'w': wide = 1; break;
		case 'f': {
			size_t n = sizeof formats / sizeof formats[0];
			for (fmt = 0; (size_t)fmt < n && strcmp(formats[fmt].name, optarg) != 0; fmt++)
				;
			if ((size_t)fmt == n) {
				fprintf(stderr, "bulwark report: unknown format '%s' (table, json, "
					"prometheus or html)\n", optarg);
				return BW_EXIT_USAGE;
			}
			fmt_given = 1;
			break;
		}
		case OPT_REPLAY: replay = 1; break;
		case 'c': base_path = optarg; break;
		case OPT_PID: {
			char *end;
			errno = 0;
			pid = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || pid <= 0) {
				fprintf(stderr, "bulwark report: --pid wants a process id, got '%s'\n",
					optarg);
				return BW_EXIT_USAGE;
			}
			break;
		}
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("report", argv, c); return BW_EXIT_USAGE;
		}
	}
	if (replay && fmt_given) {
		fputs("bulwark report: --replay writes a policy: it takes no --format\n", stderr);
		return BW_EXIT_USAGE;
	}
	if (!replay && (base_path || pid)) {
		fprintf(stderr, "bulwark report: %s goes with --replay\n",
			base_path ? "-c" : "--pid");
		return BW_EXIT_USAGE;
	}
	struct bw_config *base = NULL;
	if (base_path && !(base = bw_policy_load(base_path)))
		return BW_EXIT_USAGE;

	struct bw_report r;
	struct bw_fx fx;
	bw_report_init(&r);
	bw_fx_init(&fx);
	r.wide = wide;
	if (replay || fmt == FMT_HTML)
		r.fx = &fx;
	int status = 0;
	if (optind == argc) {
		if (read_one(&r, "-") != 0)
			status = EXIT_UNREADABLE;
	}
	for (int i = optind; i < argc; i++)
		if (read_one(&r, argv[i]) != 0)
			status = EXIT_UNREADABLE;
	if (r.skipped > BW_RP_MAX_SKIP_MSGS)
		fprintf(stderr, "bulwark report: %lld lines skipped in all (the first %d shown)\n",
			r.skipped, BW_RP_MAX_SKIP_MSGS);

	/* What could be read is still reported: the status says it was not everything. */
	bw_report_finish(&r);
	int rc;
	if (replay) {
		struct bw_replay_opts o = { base, base_path, pid };
		/* nothing to replay is said on stderr; the policy written still loads */
		bw_fx_replay(&fx, &o, stdout);
		rc = 0;
	} else if (fmt == FMT_HTML) {
		rc = bw_report_print_html(&r, &fx, stdout);
	} else {
		rc = formats[fmt].print(&r, stdout);
	}
	bw_report_free(&r);
	bw_fx_free(&fx);
	bw_config_free(base);
	/* A full disk must not leave a truncated .prom file that looks complete. */
	if (rc != 0 || fflush(stdout) != 0 || ferror(stdout)) {
		perror("bulwark report: stdout");
		return EXIT_UNREADABLE;
	}
	return status;
}
