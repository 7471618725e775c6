/* `bulwark check`: is a policy valid, and what does it amount to once defaults and
 * presets are expanded. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

#define EXIT_INVALID 1

static const struct option check_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "default", no_argument, NULL, 'd' },
	{ "quiet", no_argument, NULL, 'q' },
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
	int c, builtin = 0, quiet = 0;
	const char *config = NULL;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":c:qh", check_options, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'd': builtin = 1; break;
		case 'q': quiet = 1; break;
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("check", argv, c); return BW_EXIT_USAGE;
		}
	}
	if (argc - optind > 1 || ((builtin || config) && argc - optind > 0) ||
	    (builtin && config)) {
		fprintf(stderr, "bulwark check: expected one FILE (or -c FILE), or --default\n");
		return BW_EXIT_USAGE;
	}
	if (optind < argc)
		config = argv[optind];
	/* Verbatim, comments and layout included: it is meant as a starting point to edit. */
	if (builtin) {
		fputs(bw_default_policy_yaml, stdout);
		return flush_stdout();
	}
	struct bw_policy_src src;
	bw_policy_find(config, &src);
	/* named on the command line, the file needs no introduction; found, it does */
	if (!quiet && !config)
		bw_policy_say("bulwark check", &src, 1);
	struct bw_config *cfg = bw_policy_load(src.path);
	if (!cfg)
		return EXIT_INVALID;
	bw_config_dump(cfg, stdout);
	bw_config_free(cfg);
	return flush_stdout();
}
