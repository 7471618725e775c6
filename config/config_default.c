/* The built-in policy: what a process without a policy file runs. It is written once as
 * YAML, the text `bulwark check --default` prints and the man page shows, and once more as
 * the few values that text sets, so that a process can start without parsing it (a tenth of
 * a millisecond in every process). Everything else comes from the built-in values
 * (builtin.h) by the loader's own fill; tests/unit/test_builtin.c holds the two forms equal,
 * field for field. */
#include <stdlib.h>
#include <string.h>
#include "builtin.h"
#include "config_int.h"
#include "dest.h"

const char bw_default_policy_yaml[] =
	"version: 1\n"
	"rules:\n"
	"  - name: default-connect\n"
	"    match: { ops: [connect], dest: [\"*:*\"] }   # network peers, never a unix: socket\n"
	"    retry: { attempts: 6, backoff: { base: 200ms, max: 2s, jitter: equal }, deadline: 15s }\n"
	"    timeout: { connect: 10s }\n"
	"    breaker: { scope: dest, trip: { consecutive: 8 }, open_for: 5s }\n"
	"  - name: default-resolve\n"
	"    match: { ops: [resolve] }\n"
	"    retry: { attempts: 3, backoff: { base: 200ms, max: 2s, jitter: full } }\n"
	"  - name: default-sqlite\n"
	"    match: { ops: [sqlite] }\n"
	"    retry: { attempts: 10, backoff: { base: 5ms, max: 500ms, jitter: full }, deadline: 10s }\n"
	"  - name: default-pg\n"
	"    match: { ops: [pg] }\n"
	"    retry: { attempts: 6, backoff: { base: 200ms, max: 2s, jitter: equal }, deadline: 15s }\n"
	"  - name: default-mysql\n"
	"    match: { ops: [mysql] }\n"
	"    retry: { attempts: 6, backoff: { base: 200ms, max: 2s, jitter: equal }, deadline: 15s }\n"
	"  - name: default-redis\n"
	"    match: { ops: [redis] }\n"
	"    retry: { attempts: 5, backoff: { base: 100ms, max: 1s, jitter: equal }, deadline: 5s }\n";

/* Observing without a policy file (`bulwark run --observe`) is finding out why a run is
 * flaky: a connection reset in the middle of a reply matters as much as a refused connect,
 * so the default then also watches every other op on network sockets. A rule without a
 * policy only counts and logs the failures; in enforce mode it would cost every send and
 * recv a lookup for nothing, so it is added in observe mode only. */
const char bw_default_observe_yaml[] =
	"  - name: default-observe\n"
	"    match: { ops: [accept, send, recv], dest: [\"*:*\"] }   # observe mode only\n";

struct bw_config *bw_config_parse_default(void)
{
	struct bw_diags dg = { .n = 0 };
	return bw_config_load_string("<default>", bw_default_policy_yaml,
				     sizeof bw_default_policy_yaml - 1, &dg);
}

/* One rule of the text above: its line, and what its retry section writes. */
static uint64_t retry_rule(struct bw_rule *r, const char *name, int line, enum bw_op op,
			   int attempts, bw_usec base, bw_usec max, enum bw_jitter jitter,
			   bw_usec deadline)
{
	strcpy(r->name, name);
	r->line = line;
	r->match.ops = BW_OPBIT(op);
	r->has_retry = 1;
	r->retry.attempts = attempts;
	r->retry.base = base;
	r->retry.max = max;
	r->retry.jitter = jitter;
	r->retry.deadline = deadline;
	return FBIT(F_ATTEMPTS) | FBIT(F_BASE) | FBIT(F_MAX) | FBIT(F_JITTER) |
	       (deadline ? FBIT(F_DEADLINE) : 0);
}

struct bw_config *bw_config_default(void)
{
	struct bw_config *c = malloc(sizeof *c);
	struct bw_rule *r = calloc(6, sizeof *r);
	struct bw_dest *any_ip = calloc(1, sizeof *any_ip);
	char *path = strdup("<default>");
	char err[8];
	uint64_t have;
	if (!c || !r || !any_ip || !path || bw_dest_parse("*:*", any_ip, err, sizeof err) < 0) {
		free(c);
		free(r);
		free(any_ip);
		free(path);
		return NULL;
	}
	*c = bw_builtin_config;
	c->path = path;
	c->rules = r;
	c->n_rules = 6;

	have = retry_rule(&r[0], "default-connect", 3, BW_OP_CONNECT, 6, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_EQUAL, 15 * BW_SEC);
	r[0].match.dest = any_ip;
	r[0].match.n_dest = 1;
	r[0].timeout.connect = 10 * BW_SEC;
	r[0].breaker.enabled = 1;
	r[0].breaker.scope = BW_SCOPE_DEST;
	r[0].breaker.consecutive = 8;
	r[0].breaker.open_for = 5 * BW_SEC;
	cf_fill(&r[0], have | FBIT(F_T_CONNECT) | FBIT(F_B_SCOPE) | FBIT(F_B_CONSEC) |
			       FBIT(F_B_OPEN));

	have = retry_rule(&r[1], "default-resolve", 8, BW_OP_RESOLVE, 3, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_FULL, 0);
	cf_fill(&r[1], have);

	have = retry_rule(&r[2], "default-sqlite", 11, BW_OP_SQLITE, 10, 5 * BW_MS, 500 * BW_MS,
			  BW_JITTER_FULL, 10 * BW_SEC);
	cf_fill(&r[2], have);

	/* a server restarting is a few seconds of "starting up" and "shutting down": the
	 * connect family rides them out as default-connect does a refused connect, and a
	 * statement runs again only where the pg hook finds it safe */
	have = retry_rule(&r[3], "default-pg", 14, BW_OP_PG, 6, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_EQUAL, 15 * BW_SEC);
	cf_fill(&r[3], have);

	/* MySQL likewise; Redis is mostly a cache that a program would rather skip than
	 * wait for: a server loading its dataset or restarting gets a few seconds */
	have = retry_rule(&r[4], "default-mysql", 17, BW_OP_MYSQL, 6, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_EQUAL, 15 * BW_SEC);
	cf_fill(&r[4], have);
	have = retry_rule(&r[5], "default-redis", 20, BW_OP_REDIS, 5, 100 * BW_MS, BW_SEC,
			  BW_JITTER_EQUAL, 5 * BW_SEC);
	cf_fill(&r[5], have);

	for (int i = 0; i < c->n_rules; i++)
		c->ops |= r[i].match.ops;
	return c;
}

int bw_config_default_observe(struct bw_config *c)
{
	struct bw_rule *r = realloc(c->rules, (size_t)(c->n_rules + 1) * sizeof *r);
	if (!r)
		return -1;
	c->rules = r;
	struct bw_rule *o = memset(&r[c->n_rules], 0, sizeof *r);
	struct bw_dest *any_ip = calloc(1, sizeof *any_ip);
	char err[8];
	if (!any_ip || bw_dest_parse("*:*", any_ip, err, sizeof err) < 0) {
		free(any_ip);
		return -1;
	}
	strcpy(o->name, "default-observe");
	o->line = 23;                           /* right after the built-in text */
	o->match.ops = BW_OPBIT(BW_OP_ACCEPT) | BW_OPBIT(BW_OP_SEND) | BW_OPBIT(BW_OP_RECV);
	o->match.dest = any_ip;
	o->match.n_dest = 1;
	cf_fill(o, 0);
	c->n_rules++;
	c->ops |= o->match.ops;
	return 0;
}
