/* What the bulwark subcommands share: entry points, policy resolution, messages. */
#ifndef BW_CLI_H
#define BW_CLI_H

#include <stdio.h>
#include "config.h"

/* The tool's own failures (usage, bad policy for `run`); a command's status passes through. */
#define BW_EXIT_USAGE 2

int bw_cmd_run(int argc, char **argv);
int bw_cmd_check(int argc, char **argv);
int bw_cmd_explain(int argc, char **argv);
int bw_cmd_reload(int argc, char **argv);
int bw_cmd_suggest(int argc, char **argv);

void bw_usage(FILE *out);

/* Report a getopt_long failure for subcommand cmd: c is what it returned, '?' or ':'
 * (the option strings start with ':' so that a missing argument is told apart). */
void bw_option_error(const char *cmd, char **argv, int c);

/* Where the policy comes from, in the order it is looked for (bulwark(1), FILES): the
 * first step that names a file wins. Only `bulwark` searches; the library reads
 * BULWARK_CONFIG alone, so a program under plain LD_PRELOAD never picks up a file from
 * whatever directory it happens to run in. */
enum bw_policy_from {
	BW_FROM_OPTION,          /* -c FILE, or check's FILE argument */
	BW_FROM_ENV,             /* $BULWARK_CONFIG, set and not empty */
	BW_FROM_CWD,             /* ./bulwark.yaml */
	BW_FROM_USER,            /* $XDG_CONFIG_HOME/bulwark/bulwark.yaml, ~/.config by default */
	BW_FROM_SYSTEM,          /* /etc/bulwark/bulwark.yaml */
	BW_FROM_BUILTIN,         /* none of them: the built-in default policy */
};

struct bw_policy_src {
	const char *path;        /* NULL: the built-in default */
	enum bw_policy_from from;
	char user[4096];         /* the user file's name, when HOME or XDG_CONFIG_HOME gives one */
};

/* Find the policy: given (the command line's) if not NULL, else the search above. Returns
 * src->path. */
const char *bw_policy_find(const char *given, struct bw_policy_src *src);

/* One line on stderr, "CMD: policy PATH (why)" or "CMD: policy: the built-in default
 * (...)", naming the file and the step that found it; with detail, the built-in default's
 * line lists the files looked for. */
void bw_policy_say(const char *cmd, const struct bw_policy_src *src, int detail);

/* Load a policy (path NULL: the built-in default). On failure every diagnostic has been
 * printed on stderr as FILE:LINE:COL: message, and NULL is returned. */
struct bw_config *bw_policy_load(const char *path);

#endif
