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

const char bw_default_policy_yaml[] =
	"version: 1\n"
	"log: { sink: stderr, level: warn }\n"
	"rules:\n"
	"  - name: default-connect\n"
	"    match: { ops: [connect] }\n"
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
	"    retry: { attempts: 6, backoff: { base: 200ms, max: 2s, jitter: equal }, deadline: 15s }\n";

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
	struct bw_rule *r = calloc(4, sizeof *r);
	char *path = strdup("<default>");
	uint64_t have;
	if (!c || !r || !path) {
		free(c);
		free(r);
		free(path);
		return NULL;
	}
	*c = bw_builtin_config;
	c->path = path;
	c->log.level = BW_LVL_WARN;
	c->rules = r;
	c->n_rules = 4;

	have = retry_rule(&r[0], "default-connect", 4, BW_OP_CONNECT, 6, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_EQUAL, 15 * BW_SEC);
	r[0].timeout.connect = 10 * BW_SEC;
	r[0].breaker.enabled = 1;
	r[0].breaker.scope = BW_SCOPE_DEST;
	r[0].breaker.consecutive = 8;
	r[0].breaker.open_for = 5 * BW_SEC;
	cf_fill(&r[0], have | FBIT(F_T_CONNECT) | FBIT(F_B_SCOPE) | FBIT(F_B_CONSEC) |
			       FBIT(F_B_OPEN));

	have = retry_rule(&r[1], "default-resolve", 9, BW_OP_RESOLVE, 3, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_FULL, 0);
	cf_fill(&r[1], have);

	have = retry_rule(&r[2], "default-sqlite", 12, BW_OP_SQLITE, 10, 5 * BW_MS, 500 * BW_MS,
			  BW_JITTER_FULL, 10 * BW_SEC);
	cf_fill(&r[2], have);

	/* a server restarting is a few seconds of "starting up" and "shutting down": the
	 * connect family rides them out as default-connect does a refused connect, and a
	 * statement runs again only where the pg hook finds it safe */
	have = retry_rule(&r[3], "default-pg", 15, BW_OP_PG, 6, 200 * BW_MS, 2 * BW_SEC,
			  BW_JITTER_EQUAL, 15 * BW_SEC);
	cf_fill(&r[3], have);

	for (int i = 0; i < c->n_rules; i++)
		c->ops |= r[i].match.ops;
	return c;
}
