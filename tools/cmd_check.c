/* `bulwark check`: is a policy valid, and what does it amount to once defaults and
 * presets are expanded. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

#define EXIT_INVALID 1

static const struct option check_options[] = {
	{ "default", no_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* A full disk or a closed pipe must not pass for a printed policy. */
static int flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	perror("bulwark check: stdout");
	return EXIT_INVALID;
}

int bw_cmd_check(int argc, char **argv)
{
	int c, builtin = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", check_options, NULL)) != -1) {
		switch (c) {
		case 'd': builtin = 1; break;
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("check", argv, c); return BW_EXIT_USAGE;
		}
	}
	if (argc - optind > 1 || (builtin && argc - optind > 0)) {
		fprintf(stderr, "bulwark check: expected one FILE, or --default\n");
		return BW_EXIT_USAGE;
	}
	/* Verbatim, comments and layout included: it is meant as a starting point to edit. */
	if (builtin) {
		fputs(bw_default_policy_yaml, stdout);
		return flush_stdout();
	}
	struct bw_config *cfg = bw_policy_load(bw_policy_path(argv[optind]));
	if (!cfg)
		return EXIT_INVALID;
	bw_config_dump(cfg, stdout);
	bw_config_free(cfg);
	return flush_stdout();
}
