/* bulwark: the command-line front end of libbulwark.so. Dispatches to one subcommand. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include "cli.h"
#include "report.h"
#include "status_model.h"

#ifndef BW_VERSION
#define BW_VERSION "unknown"
#endif

void bw_usage(FILE *out)
{
	fputs("usage: bulwark run [OPTIONS] [--] COMMAND [ARG...]\n"
	      "       bulwark check [-q] [FILE | -c FILE | --default]\n"
	      "       bulwark explain [-c FILE] [--prog NAME] [--db NAME] [--resolve] OP TARGET\n"
	      "       bulwark report [--wide] [--format table|json|prometheus|html] [FILE...]\n"
	      "       bulwark report --replay [-c FILE] [--pid PID] [FILE...]\n"
	      "       bulwark suggest [FILE...]\n"
	      "       bulwark status [--group ID] [--dir DIR] [--wide]\n"
	      "                      [--format table|json|prometheus | --prune | --fleet]\n"
	      "       bulwark reload --group ID [--dir DIR]\n"
	      "       bulwark metrics [--listen ADDR:PORT | --textfile PATH] [--group ID]\n"
	      "                       [--dir DIR]\n"
	      "       bulwark version | -V | --version\n"
	      "\n"
	      "run: run COMMAND with libbulwark.so preloaded and the policy applied\n"
	      "  -c, --config FILE   policy file; without it the first of $BULWARK_CONFIG,\n"
	      "                      ./bulwark.yaml, ~/.config/bulwark/bulwark.yaml (or under\n"
	      "                      $XDG_CONFIG_HOME) and /etc/bulwark/bulwark.yaml, else the\n"
	      "                      built-in default policy\n"
	      "  -o, --log SINK      override log.sink: stderr | syslog | file:PATH\n"
	      "  -l, --level LEVEL   override log.level: error | warn | info | debug\n"
	      "      --observe       override mode: observe (decide and log, change nothing)\n"
	      "      --seed N        override seed (reproducible jitter and injection)\n"
	      "  -q, --quiet         do not name the policy in use or warn; errors only\n"
	      "\n"
	      "check: validate a policy and print it with defaults and presets expanded;\n"
	      "  without FILE, the one run would use, named on stderr (-q: not named);\n"
	      "  --default prints the built-in default policy\n"
	      "\n"
	      "explain: which rule a call would meet, and its policy. OP is connect, accept,\n"
	      "  send, recv, resolve, sqlite, pg, mysql or redis; TARGET an address\n"
	      "  (127.0.0.1:5432, [::1]:6379, db.internal:5432, unix:/run/app.sock), a host\n"
	      "  name (resolve) or a database path (sqlite). --prog NAME: the program, for\n"
	      "  rules with match.prog; --db NAME: the database (pg, mysql; redis: its\n"
	      "  number). A host name is matched by name, not looked up; --resolve looks it\n"
	      "  up now and explains each address\n"
	      "\n"
	      "report: summarize event logs (JSON Lines; standard input when no FILE, or\n"
	      "  for -) per rule and destination, flakiest first\n"
	      "  -f, --format FMT    table (default, 80 columns) | json | prometheus | html\n"
	      "                      (one page, a timeline per process and destination)\n"
	      "  -w, --wide          table: names and counts whole, lines as long as needed\n"
	      "      --replay        write an inject policy that makes the failures of one run\n"
	      "                      happen again at the same calls (fail events' n)\n"
	      "  -c, --config FILE   --replay: each replay rule takes the policy FILE gives\n"
	      "                      its calls, and FILE's rules follow (try a cure)\n"
	      "      --pid PID       --replay: the run with this process (default: the last\n"
	      "                      run with a failure)\n"
	      "\n"
	      "suggest: propose a policy (timeouts, retry, breaker, rate limit per destination)\n"
	      "  from what an observe-mode run measured, each value with the figure it came\n"
	      "  from; standard input when no FILE\n"
	      "\n"
	      "status: breakers and rate limits shared by live process groups (state:\n"
	      "  {share: group}); exit 0 healthy, 1 degraded, 2 unhealthy, 3 unknown\n"
	      "  -g, --group ID      only this group\n"
	      "      --fleet         fleet mode: each group's host, mode, leases and breakers\n"
	      "  -d, --dir DIR       state directory (default: the policy's `auto`:\n"
	      "                      $XDG_RUNTIME_DIR/bulwark, else /tmp/bulwark-UID)\n"
	      "  -f, --format FMT    table (default, 80 columns) | json | prometheus\n"
	      "  -w, --wide          table: names whole, lines as long as needed\n"
	      "      --prune         remove the state files of stale groups (every process\n"
	      "                      gone), say what was removed; exit 0, or 1 on a failure\n"
	      "\n"
	      "reload: ask every process of a group (state: {share: group}) to read its\n"
	      "  policy file again now; exit 0 asked, 1 nothing to reload. A process reads\n"
	      "  a changed policy file by itself within about a second\n"
	      "  -g, --group ID      the group\n"
	      "  -d, --dir DIR       state directory (as for status)\n"
	      "\n"
	      "metrics: the live groups' counters, call times, breakers, tokens and\n"
	      "  bulkheads in the Prometheus text format, on standard output\n"
	      "  -l, --listen ADDR:PORT  serve it over HTTP instead (127.0.0.1:9464)\n"
	      "  -t, --textfile PATH     write it to PATH atomically instead\n"
	      "  -g, --group ID      only this group\n"
	      "  -d, --dir DIR       state directory (as for status)\n"
	      "\n"
	      "See bulwark(1) and bulwark.yaml(5).\n",
	      out);
}

void bw_option_error(const char *cmd, char **argv, int c)
{
	const char *word = argv[optind - 1];
	char shown[3] = { '-', (char)optopt, '\0' };
	/* optopt names a short option; a long one is only known by the word itself. */
	const char *opt = strncmp(word, "--", 2) == 0 || optopt <= 0 || optopt > 127 ? word : shown;
	fprintf(stderr, "bulwark %s: %s '%s' (see bulwark --help)\n", cmd,
		c == ':' ? "missing argument for option" : "unknown option", opt);
}

static int cmd_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("bulwark %s\nlibyaml %s\n", BW_VERSION, yaml_get_version_string());
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	bw_usage(stdout);
	return 0;
}

/* Each gets the arguments from its own name on, as getopt expects. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "run", bw_cmd_run },
	{ "check", bw_cmd_check },
	{ "explain", bw_cmd_explain },
	{ "version", cmd_version },
	{ "--version", cmd_version },
	{ "-V", cmd_version },
	{ "help", cmd_help },
	{ "--help", cmd_help },
	{ "-h", cmd_help },
	{ "report", bw_cmd_report },
	{ "status", bw_cmd_status },
	{ "reload", bw_cmd_reload },
	{ "suggest", bw_cmd_suggest },
	{ "metrics", bw_cmd_metrics },
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		bw_usage(stderr);
		return BW_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "bulwark: unknown command '%s' (see bulwark --help)\n", argv[1]);
	return BW_EXIT_USAGE;
}
