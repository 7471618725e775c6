/* `bulwark explain`: which rule a call would meet, asked of the same matcher the library
 * uses, so the answer cannot drift from what happens at run time. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "ops.h"
#include "match.h"
#include "target.h"

#define EXIT_FAILED 1
#define MAX_ADDRS 32

static const struct option explain_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "prog", required_argument, NULL, 'p' },
	{ "db", required_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void print_where(const struct bw_config *cfg, const struct bw_rule *r)
{
	if (cfg->path && cfg->path[0] != '<')
		printf("rule \"%s\" (%s:%d)", r->name, cfg->path, r->line);
	else
		printf("rule \"%s\" (built-in default policy, line %d)", r->name, r->line);
}

static void print_progs(const struct bw_rule *r)
{
	printf(", only for programs named");
	for (int i = 0; i < r->match.n_prog; i++)
		printf("%s %s", i ? "," : "", r->match.prog[i]);
}

/* Without --prog the program is unknown: a rule limited to some programs is shown with
 * its limit, then the question is asked again for every other program. dest is the
 * address TARGET stood for, when it differs from it. */
static void explain_one(const struct bw_config *cfg, unsigned char *active,
			const struct bw_target *t, const char *target, const char *dest,
			int prog_known)
{
	const char *host = NULL;
	const char *lead = "";
	for (;;) {
		const struct bw_rule *r = bw_match(cfg, active, t, &host);
		if (dest)
			printf("%s%s %s (%s): ", lead, bw_op_name(t->op), dest, target);
		else
			printf("%s%s %s: ", lead, bw_op_name(t->op), target);
		if (!r) {
			printf("no rule matches: the call passes through untouched\n");
			return;
		}
		print_where(cfg, r);
		if (host && t->addr)
			printf(", host %s", host);
		if (!prog_known && r->match.n_prog)
			print_progs(r);
		printf("\n");
		bw_rule_dump(r, stdout, 2);
		if (prog_known || r->match.n_prog == 0)
			return;
		active[r - cfg->rules] = 0;
		lead = "for other programs, ";
	}
}

/* The library decides which rules apply to a process by its program name, once. */
static void set_active(const struct bw_config *cfg, unsigned char *active, const char *prog)
{
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_match *m = &cfg->rules[i].match;
		active[i] = 1;
		if (!prog || m->n_prog == 0)
			continue;
		active[i] = 0;
		for (int j = 0; j < m->n_prog && !active[i]; j++)
			active[i] = (unsigned char)bw_glob(m->prog[j], prog);
	}
}

/* A PostgreSQL server as the pg hook sees one before it connects: an address or a unix
 * socket path as an address, a host name by its name and port (nothing is resolved). */
static int pg_target(const char *target, struct bw_target *t, char *host, size_t cap)
{
	const char *colon = strrchr(target, ':');
	char *end;
	if (strncmp(target, "unix:", 5) == 0 || target[0] == '[' || !colon)
		return -1;
	long port = strtol(colon + 1, &end, 10);
	if (*end || colon == target || port < 1 || port > 65535 ||
	    (size_t)(colon - target) >= cap)
		return -1;
	snprintf(host, cap, "%.*s", (int)(colon - target), target);
	struct in6_addr a;
	if (inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1)
		return -1;
	t->host = host;
	t->port = (int)port;
	return 0;
}

static int explain(const struct bw_config *cfg, int op, const char *target, const char *prog,
		   const char *db)
{
	struct bw_addr addrs[MAX_ADDRS];
	struct bw_target t = { .op = op, .db = db };
	char host[256];
	int n = 1, sock = op != BW_OP_RESOLVE && op != BW_OP_SQLITE;
	if (op == BW_OP_RESOLVE)
		t.host = target;
	else if (op == BW_OP_SQLITE)
		t.db = target;
	else if (op == BW_OP_PG && pg_target(target, &t, host, sizeof host) == 0)
		sock = 0;
	else if ((n = bw_socket_target(target, addrs, MAX_ADDRS)) == 0)
		fprintf(stderr, "bulwark explain: %s: no IPv4 or IPv6 address\n", target);
	if (n <= 0)
		return n == BW_TARGET_BAD ? BW_EXIT_USAGE : EXIT_FAILED;

	unsigned char *active = malloc((size_t)cfg->n_rules + 1);
	if (!active)
		return EXIT_FAILED;
	for (int i = 0; i < n; i++) {
		char dest[BW_DEST_NAME_MAX];
		set_active(cfg, active, prog);
		if (sock) {
			t.addr = (const struct sockaddr *)&addrs[i].ss;
			t.addrlen = addrs[i].len;
			bw_format_sockaddr(t.addr, t.addrlen, dest, sizeof dest);
		}
		explain_one(cfg, active, &t, target,
			    sock && strcmp(dest, target) != 0 ? dest : NULL, prog != NULL);
	}
	free(active);
	return 0;
}

int bw_cmd_explain(int argc, char **argv)
{
	const char *config = NULL, *prog = NULL, *db = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":c:h", explain_options, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'p': prog = optarg; break;
		case 'd': db = optarg; break;
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("explain", argv, c); return BW_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "bulwark explain: expected OP TARGET, e.g. "
			"`bulwark explain connect 127.0.0.1:5432`\n");
		return BW_EXIT_USAGE;
	}
	int op = bw_op_parse(argv[optind]);
	if (op < 0) {
		fprintf(stderr, "bulwark explain: %s: expected an op: connect, accept, send, recv, "
			"resolve, sqlite or pg\n", argv[optind]);
		return BW_EXIT_USAGE;
	}
	struct bw_config *cfg = bw_policy_load(bw_policy_path(config));
	if (!cfg)
		return EXIT_FAILED;
	int rc = explain(cfg, op, argv[optind + 1], prog, db);
	bw_config_free(cfg);
	return rc;
}
