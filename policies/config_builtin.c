/* SPEC 7's default policy as data. It must equal bw_default_policy_yaml loaded by the
 * loader, field for field (tests/unit/test_builtin.c holds them to it). */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include "config.h"

#define MS 1000LL
#define S (1000 * MS)

static void rule(struct bw_rule *r, const char *name, int line, enum bw_op op, int attempts,
		 bw_usec base, bw_usec max, enum bw_jitter jitter, bw_usec deadline)
{
	strcpy(r->name, name);
	r->line = line;
	r->match.ops = BW_OPBIT(op);
	r->has_retry = 1;
	r->retry = (struct bw_retry){ .attempts = attempts, .base = base, .max = max,
				      .multiplier = 2.0, .jitter = jitter, .deadline = deadline };
	r->nonblocking = BW_NB_RETRY;
	r->max_keys = 4096;
}

struct bw_config *bw_config_default(void)
{
	struct bw_config *c = calloc(1, sizeof *c);
	struct bw_rule *r = calloc(3, sizeof *r);
	char *path = strdup("<default>");
	if (!c || !r || !path) {
		free(c);
		free(r);
		free(path);
		return NULL;
	}
	c->path = path;
	c->version = 1;
	c->log = (struct bw_log){ .sink = BW_SINK_STDERR, .level = BW_LVL_WARN,
				  .facility = LOG_USER, .summary = 1 };
	c->rules = r;
	c->n_rules = 3;
	rule(&r[0], "default-connect", 4, BW_OP_CONNECT, 6, 200 * MS, 2 * S, BW_JITTER_EQUAL,
	     15 * S);
	r[0].timeout.connect = 10 * S;
	r[0].breaker = (struct bw_breaker){ .enabled = 1, .scope = BW_SCOPE_DEST, .consecutive = 8,
					    .window = 30 * S, .min_calls = 20, .open_for = 5 * S,
					    .open_for_max = 300 * S, .half_open_probes = 1 };
	rule(&r[1], "default-resolve", 9, BW_OP_RESOLVE, 3, 200 * MS, 2 * S, BW_JITTER_FULL, 0);
	rule(&r[2], "default-sqlite", 12, BW_OP_SQLITE, 10, 5 * MS, 500 * MS, BW_JITTER_FULL,
	     10 * S);
	c->ops = BW_OPBIT(BW_OP_CONNECT) | BW_OPBIT(BW_OP_RESOLVE) | BW_OPBIT(BW_OP_SQLITE);
	return c;
}
