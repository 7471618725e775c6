/* `bulwark explain`: which rule a call would meet, asked of the same matcher the library
 * uses, so the answer cannot drift from what happens at run time. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "lease.h"
#include "redis_url.h"
#include "ops.h"
#include "match.h"
#include "target.h"

#define EXIT_FAILED 1
#define MAX_ADDRS 32

static const struct option explain_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "prog", required_argument, NULL, 'p' },
	{ "resolve", no_argument, NULL, 'r' },
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

/* Programs known to answer some names themselves, never asking getaddrinfo or
 * gethostbyname: the library never learns those names, so at run time a host-name rule
 * does not see them in these programs, and a resolve rule never sees the lookup. */
static const struct {
	const char *prog;
	const char *names[2];        /* globs */
	const char *what;
} self_resolving[] = {
	{ "curl", { "localhost", "*.localhost" }, "127.0.0.1 and ::1" },
};

/* Whether rule r can apply in program p at all (match.prog). */
static int rule_in_prog(const struct bw_rule *r, const char *p)
{
	for (int i = 0; i < r->match.n_prog; i++)
		if (bw_glob(r->match.prog[i], p))
			return 1;
	return r->match.n_prog == 0;
}

static void note_self_resolving(const struct bw_rule *r, const char *host, int port,
				const char *prog, int op)
{
	for (size_t i = 0; i < sizeof self_resolving / sizeof self_resolving[0]; i++) {
		const char *p = self_resolving[i].prog;
		if ((prog && strcmp(prog, p) != 0) || !rule_in_prog(r, p))
			continue;
		if (!bw_glob(self_resolving[i].names[0], host) &&
		    !bw_glob(self_resolving[i].names[1], host))
			continue;
		if (op == BW_OP_RESOLVE)
			printf("  note: %s never looks up %s (it answers %s itself): this rule does "
			       "not see %s's lookups of it\n", p, host, self_resolving[i].what, p);
		else
			printf("  note: %s resolves %s itself (to %s), without getaddrinfo: in %s "
			       "this rule never matches; name the addresses instead "
			       "(127.0.0.1:%d, [::1]:%d)\n", p, host, self_resolving[i].what, p,
			       port, port);
	}
}

static int port_of(const struct bw_target *t)
{
	if (t->addr->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)t->addr)->sin_port);
	if (t->addr->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)t->addr)->sin6_port);
	return 0;
}

/* Under share: fleet, what the rule's limit and breaker mean for the fleet. */
static void print_fleet_scope(const struct bw_config *cfg, const struct bw_rule *r)
{
	const struct bw_fleet *f = &cfg->state.fleet;
	const struct bw_rate_limit *rl = &r->rate_limit;
	if (cfg->state.share != BW_SHARE_FLEET)
		return;
	if (rl->enabled && rl->fleet) {
		double lease = bw_lease_size(rl->rate, rl->burst, f->sync, f->hosts);
		printf("  fleet: the rate limit holds for every host together (%s), through %s: "
		       "each host holds a lease of at most %.0f %s (with %d hosts, refilled every "
		       "%lldms); Redis out of reach: %s\n",
		       rl->scope == BW_SCOPE_DEST ? "per destination" : "for the rule", f->redis,
		       lease, rl->bytes ? "bytes" : "tokens", f->hosts,
		       (long long)(f->sync / BW_MS),
		       f->on_unreachable == BW_UNREACH_LOCAL ? "each host takes rate / hosts" :
		       f->on_unreachable == BW_UNREACH_OPEN ? "each host takes the whole rate"
							    : "calls are refused");
	} else if (rl->enabled) {
		printf("  fleet: the rate limit is per process (scope: process), not the fleet's\n");
	}
	if (r->breaker.enabled)
		printf("  fleet: the breaker opens on every host once %d of %d hosts saw it open "
		       "(fleet_quorum); one probe for the whole fleet\n", bw_fleet_quorum(f),
		       f->hosts);
}

static void dump_rule(const struct bw_config *cfg, const struct bw_rule *r)
{
	bw_rule_dump(r, stdout, 2);
	print_fleet_scope(cfg, r);
}

/* Without --prog the program is unknown: a rule limited to some programs is shown with
 * its limit, then the question is asked again for every other program. dest is the
 * address TARGET stood for, when it differs from it. */
static void explain_one(const struct bw_config *cfg, unsigned char *active,
			const struct bw_target *t, const char *target, const char *dest,
			const char *prog)
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
		if (!prog && r->match.n_prog)
			print_progs(r);
		printf("\n");
		dump_rule(cfg, r);
		if (host && t->addr)
			note_self_resolving(r, host, port_of(t), prog, t->op);
		else if (t->op == BW_OP_RESOLVE)
			note_self_resolving(r, t->host, 0, prog, t->op);
		if (prog || r->match.n_prog == 0)
			return;
		active[r - cfg->rules] = 0;
		lead = "for other programs, ";
	}
}

/* How a rule meets a socket call to a host name whose addresses are not known (none is
 * looked up: explain works offline): for certain (by the name, or by a dest that takes
 * any address), only if the name resolves to an address the rule lists, or not. */
enum { NAME_NO, NAME_ANY, NAME_HOST, NAME_IF_ADDR };

static int by_name(const struct bw_rule *r, int op, const char *host, int port)
{
	const struct bw_match *m = &r->match;
	unsigned keys = bw_op(op)->keys;
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int maybe = 0;
	if (!(m->ops & BW_OPBIT(op)) || (m->n_host && !(keys & BW_KEY_HOST)) ||
	    (m->n_db && !(keys & BW_KEY_DB)))
		return NAME_NO;
	if (!m->n_dest)
		return NAME_ANY;
	if (!(keys & BW_KEY_DEST))
		return NAME_NO;
	for (int i = 0; i < m->n_dest; i++) {
		const struct bw_dest *d = &m->dest[i];
		if (d->kind == BW_DEST_ADDR) {
			maybe |= d->port < 0 || d->port == port;
			continue;
		}
		/* the library's own test, on an address that carries only the port */
		if (bw_match_dest(d, (const struct sockaddr *)&any, sizeof any, host))
			return d->kind == BW_DEST_HOST ? NAME_HOST : NAME_ANY;
	}
	return maybe ? NAME_IF_ADDR : NAME_NO;
}

static void print_addr_dests(const struct bw_rule *r, int port)
{
	const char *sep = "";
	for (int i = 0; i < r->match.n_dest; i++) {
		const struct bw_dest *d = &r->match.dest[i];
		if (d->kind == BW_DEST_ADDR && (d->port < 0 || d->port == port)) {
			printf("%s%s", sep, d->text);
			sep = ", ";
		}
	}
}

/* A socket call to host:port, answered from the names in the policy alone. Rules that
 * list addresses come first when they come first in the policy: each is shown with the
 * condition under which it, rather than what follows, applies. */
static void explain_name(const struct bw_config *cfg, unsigned char *active, int op,
			 const char *target, const char *host, int port, const char *prog)
{
	const char *lead = "";
	for (;;) {
		const struct bw_rule *hit = NULL;
		int how = NAME_NO, conditions = 0;
		for (int i = 0; i < cfg->n_rules && !hit; i++) {
			const struct bw_rule *r = &cfg->rules[i];
			if (!active[i] || (how = by_name(r, op, host, port)) == NAME_NO)
				continue;
			if (how != NAME_IF_ADDR) {
				hit = r;
				break;
			}
			printf("%s%s %s: ", lead, bw_op_name(op), target);
			print_where(cfg, r);
			printf(", if %s resolves to an address it lists (", host);
			print_addr_dests(r, port);
			printf(")");
			if (!prog && r->match.n_prog)
				print_progs(r);
			printf("\n");
			dump_rule(cfg, r);
			conditions++;
		}
		printf("%s%s %s%s: ", lead, bw_op_name(op), target,
		       conditions ? " at any other address" : "");
		if (!hit)
			printf("no rule matches: the call passes through untouched\n");
		if (!hit && conditions)
			printf("  (--resolve: look %s up now and explain each address)\n", host);
		if (!hit)
			return;
		print_where(cfg, hit);
		if (how == NAME_HOST)
			printf(", by host name %s", host);
		if (!prog && hit->match.n_prog)
			print_progs(hit);
		printf("\n");
		dump_rule(cfg, hit);
		if (how == NAME_HOST)
			note_self_resolving(hit, host, port, prog, op);
		if (prog || hit->match.n_prog == 0)
			return;
		active[hit - cfg->rules] = 0;
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

/* A database server as a client library's hook (pg, mysql, redis) sees one before it
 * connects: an address or a unix socket path as an address, a host name by its name and
 * port (nothing is resolved). */
static int client_target(const char *target, struct bw_target *t, char *host, size_t cap)
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
		   const char *db, int resolve)
{
	struct bw_addr addrs[MAX_ADDRS];
	struct bw_target t = { .op = op, .db = db };
	char host[256];
	int n = 1, port = 0, sock = op != BW_OP_RESOLVE && op != BW_OP_SQLITE, name = 0;
	if (op == BW_OP_RESOLVE)
		t.host = target;
	else if (op == BW_OP_SQLITE)
		t.db = target;
	else if (!bw_op_has(op, BW_OPF_SOCKET) && (bw_op(op)->keys & BW_KEY_DEST) &&
		 client_target(target, &t, host, sizeof host) == 0)
		sock = 0;
	else if ((name = bw_target_host(target, host, sizeof host, &port)) == BW_TARGET_BAD)
		n = BW_TARGET_BAD;
	else if ((!name || resolve) && (n = bw_socket_target(target, addrs, MAX_ADDRS)) == 0)
		fprintf(stderr, "bulwark explain: %s: no IPv4 or IPv6 address\n", target);
	if (n <= 0)
		return n == BW_TARGET_BAD ? BW_EXIT_USAGE : EXIT_FAILED;

	unsigned char *active = malloc((size_t)cfg->n_rules + 1);
	if (!active)
		return EXIT_FAILED;
	/* a host name is answered from the policy's names, without a lookup: explain must
	 * work where the name does not resolve (offline, another network) */
	if (name && !resolve) {
		set_active(cfg, active, prog);
		explain_name(cfg, active, op, target, host, port, prog);
		free(active);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		char dest[BW_DEST_NAME_MAX];
		set_active(cfg, active, prog);
		if (sock) {
			t.addr = (const struct sockaddr *)&addrs[i].ss;
			t.addrlen = addrs[i].len;
			bw_format_sockaddr(t.addr, t.addrlen, dest, sizeof dest);
		}
		explain_one(cfg, active, &t, target,
			    sock && strcmp(dest, target) != 0 ? dest : NULL, prog);
	}
	free(active);
	return 0;
}

int bw_cmd_explain(int argc, char **argv)
{
	const char *config = NULL, *prog = NULL, *db = NULL;
	int c, resolve = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":c:h", explain_options, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'p': prog = optarg; break;
		case 'r': resolve = 1; break;
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
			"resolve, sqlite, pg, mysql or redis\n", argv[optind]);
		return BW_EXIT_USAGE;
	}
	struct bw_policy_src src;
	struct bw_config *cfg = bw_policy_load(bw_policy_find(config, &src));
	if (!cfg)
		return EXIT_FAILED;
	int rc = explain(cfg, op, argv[optind + 1], prog, db, resolve);
	bw_config_free(cfg);
	return rc;
}
