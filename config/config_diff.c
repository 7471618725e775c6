/* How two policies differ: what a reloaded policy changed (the `reload` event says it,
 * and a file saved again unchanged is not loaded a second time). Rules are compared by
 * their effective form (bw_rule_dump: presets expanded, defaults merged), so that
 * writing the same policy another way changes nothing. */
#include <stdlib.h>
#include <string.h>
#include "config.h"

static char *dump_of(const struct bw_rule *r, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	bw_rule_dump(r, f, 0);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int bw_rule_same(const struct bw_rule *a, const struct bw_rule *b)
{
	size_t la = 0, lb = 0;
	char *da = dump_of(a, &la), *db = dump_of(b, &lb);
	int same = da && db && la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return same;
}

static int str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int fleet_same(const struct bw_fleet *a, const struct bw_fleet *b)
{
	return str_same(a->redis, b->redis) && str_same(a->key_prefix, b->key_prefix) &&
	       a->on_unreachable == b->on_unreachable && a->hosts == b->hosts &&
	       a->quorum == b->quorum && a->quorum_pct == b->quorum_pct && a->sync == b->sync;
}

unsigned bw_config_differs(const struct bw_config *a, const struct bw_config *b)
{
	unsigned d = 0;
	if (a->mode != b->mode)
		d |= BW_CFG_MODE;
	if (a->log.level != b->log.level || a->log.summary != b->log.summary)
		d |= BW_CFG_LEVEL;
	if (a->seed != b->seed)
		d |= BW_CFG_SEED;
	if (a->log.sink != b->log.sink || a->log.facility != b->log.facility ||
	    !str_same(a->log.path, b->log.path))
		d |= BW_CFG_LOG;
	if (a->state.share != b->state.share || !str_same(a->state.dir, b->state.dir) ||
	    !fleet_same(&a->state.fleet, &b->state.fleet))
		d |= BW_CFG_STATE;
	if (a->n_rules != b->n_rules)
		d |= BW_CFG_RULES;
	for (int i = 0; i < a->n_rules && !(d & BW_CFG_RULES); i++)
		if (strcmp(a->rules[i].name, b->rules[i].name) != 0 ||
		    !bw_rule_same(&a->rules[i], &b->rules[i]))
			d |= BW_CFG_RULES;
	return d;
}
