/* Which policy a subcommand uses, and how its problems are shown. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "cli.h"

const char *bw_policy_path(const char *given)
{
	if (given)
		return given;
	const char *env = getenv("BULWARK_CONFIG");
	if (env && *env)
		return env;
	/* Like a Makefile: the project's policy is picked up from where the command runs. */
	if (access("bulwark.yaml", F_OK) == 0)
		return "bulwark.yaml";
	return NULL;
}

static void print_diags(const struct bw_diags *d, const char *path)
{
	char line[sizeof d->d[0].file + sizeof d->d[0].msg + 32];
	int shown = d->n < BW_MAX_DIAGS ? d->n : BW_MAX_DIAGS;
	for (int i = 0; i < shown; i++) {
		bw_diag_format(&d->d[i], line, sizeof line);
		fprintf(stderr, "%s\n", line);
	}
	if (d->n > shown)
		fprintf(stderr, "%s: %d more problems not shown\n", path, d->n - shown);
	/* The loader promises a diagnostic with every failure; never fail silently if not. */
	if (d->n == 0)
		fprintf(stderr, "%s: the policy could not be loaded\n", path);
}

struct bw_config *bw_policy_load(const char *path)
{
	struct bw_diags diags = { .n = 0 };
	struct bw_config *cfg;
	if (path)
		cfg = bw_config_load_file(path, &diags);
	else
		cfg = bw_config_default();
	if (!cfg)
		print_diags(&diags, path ? path : "<default>");
	return cfg;
}
