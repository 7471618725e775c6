/* `bulwark report`: merge the event logs of many processes into one summary per rule and
 * destination. Reading never stops at a bad line: logs shared with a program's stderr,
 * or cut short by a crash, are what this is run on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "report.h"

#define EXIT_UNREADABLE 1

static const struct option report_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ "wide", no_argument, NULL, 'w' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct {
	const char *name;
	int (*print)(struct bw_report *r, FILE *out);
} formats[] = {
	{ "table", bw_report_print_table },
	{ "json", bw_report_print_json },
	{ "prometheus", bw_report_print_prom },
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
	int c, fmt = 0, wide = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hf:w", report_options, NULL)) != -1) {
		switch (c) {
		case 'w': wide = 1; break;
		case 'f': {
			size_t n = sizeof formats / sizeof formats[0];
			for (fmt = 0; (size_t)fmt < n && strcmp(formats[fmt].name, optarg) != 0; fmt++)
				;
			if ((size_t)fmt == n) {
				fprintf(stderr, "bulwark report: unknown format '%s' (table, json or "
					"prometheus)\n", optarg);
				return BW_EXIT_USAGE;
			}
			break;
		}
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("report", argv, c); return BW_EXIT_USAGE;
		}
	}

	struct bw_report r;
	bw_report_init(&r);
	r.wide = wide;
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
	int rc = formats[fmt].print(&r, stdout);
	bw_report_free(&r);
	/* A full disk must not leave a truncated .prom file that looks complete. */
	if (rc != 0 || fflush(stdout) != 0 || ferror(stdout)) {
		perror("bulwark report: stdout");
		return EXIT_UNREADABLE;
	}
	return status;
}
