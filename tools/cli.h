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

void bw_usage(FILE *out);

/* Report a getopt_long failure for subcommand cmd: c is what it returned, '?' or ':'
 * (the option strings start with ':' so that a missing argument is told apart). */
void bw_option_error(const char *cmd, char **argv, int c);

/* The policy file that applies when the command line names none: $BULWARK_CONFIG when set
 * and non-empty, else ./bulwark.yaml when it exists, else NULL (the built-in default). */
const char *bw_policy_path(const char *given);

/* Load a policy (path NULL: the built-in default). On failure every diagnostic has been
 * printed on stderr as FILE:LINE:COL: message, and NULL is returned. */
struct bw_config *bw_policy_load(const char *path);

#endif
