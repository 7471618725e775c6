/* Which policy a subcommand uses, and how its problems are shown. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "cli.h"
#include "paths.h"

#ifndef BW_SYSTEM_POLICY
#define BW_SYSTEM_POLICY "/etc/bulwark/bulwark.yaml"
#endif
#define BW_USER_POLICY "bulwark/bulwark.yaml"

/* The XDG base directory rule: $XDG_CONFIG_HOME when it is an absolute path, else
 * $HOME/.config; nothing when neither gives a directory. */
static const char *user_policy(char *buf, size_t cap)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/" BW_USER_POLICY, xdg);
	else if (home && home[0])
		n = snprintf(buf, cap, "%s/.config/" BW_USER_POLICY, home);
	else
		return NULL;
	return n > 0 && (size_t)n < cap ? buf : NULL;
}

const char *bw_policy_find(const char *given, struct bw_policy_src *src)
{
	const char *env = getenv("BULWARK_CONFIG");
	const char *user = user_policy(src->user, sizeof src->user);
	if (!user)
		src->user[0] = '\0';
	src->path = NULL;
	if (given) {
		src->from = BW_FROM_OPTION;
		src->path = given;
	} else if (env && *env) {
		src->from = BW_FROM_ENV;
		src->path = env;
	} else if (access("bulwark.yaml", F_OK) == 0) {
		/* like a Makefile: a project's policy is picked up where the command runs */
		src->from = BW_FROM_CWD;
		src->path = "bulwark.yaml";
	} else if (user && access(user, F_OK) == 0) {
		src->from = BW_FROM_USER;
		src->path = user;
	} else if (access(BW_SYSTEM_POLICY, F_OK) == 0) {
		src->from = BW_FROM_SYSTEM;
		src->path = BW_SYSTEM_POLICY;
	} else {
		src->from = BW_FROM_BUILTIN;
	}
	return src->path;
}

void bw_policy_say(const char *cmd, const struct bw_policy_src *src, int detail)
{
	static const char *const why[] = {
		[BW_FROM_OPTION] = "given on the command line",
		[BW_FROM_ENV] = "from $BULWARK_CONFIG",
		[BW_FROM_CWD] = "./bulwark.yaml in the working directory",
		[BW_FROM_USER] = "the user's policy",
		[BW_FROM_SYSTEM] = "the system's policy",
	};
	char abs[PATH_MAX];
	if (src->from == BW_FROM_BUILTIN || !src->path) {
		if (!detail)
			fprintf(stderr, "%s: policy: the built-in default (no policy file found)\n",
				cmd);
		else
			fprintf(stderr, "%s: policy: the built-in default (no -c; none of "
				"$BULWARK_CONFIG, ./bulwark.yaml, %s%s" BW_SYSTEM_POLICY ")\n", cmd,
				src->user, src->user[0] ? ", " : "");
		return;
	}
	const char *shown = bw_abs_path(src->path, abs, sizeof abs) == 0 ? abs : src->path;
	fprintf(stderr, "%s: policy %s (%s)\n", cmd, shown, why[src->from]);
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
