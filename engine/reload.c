/* The `reload` event (bulwark.yaml(5), EVENTS): what a policy read again changed, or why
 * it was not taken. Its level is warn when the policy changed: a change of what the
 * library does to a running program is news in the default log, as a breaker opening is;
 * info when the file changed and the policy did not; error when the file is refused. */
#include <stdio.h>
#include <string.h>
#include "engine.h"

static int has_rule(const struct bw_config *cfg, const char *name, int *at)
{
	for (int i = 0; i < cfg->n_rules; i++)
		if (strcmp(cfg->rules[i].name, name) == 0) {
			*at = i;
			return 1;
		}
	return 0;
}

enum change { ADDED, REMOVED, CHANGED, N_CHANGES };

/* Whether rule i of `of` is of the kind k against `other`. */
static int is(enum change k, const struct bw_config *of, int i, const struct bw_config *other)
{
	int j;
	int there = has_rule(other, of->rules[i].name, &j);
	switch (k) {
	case CHANGED:
		return there && !bw_rule_same(&of->rules[i], &other->rules[j]);
	default:
		return !there;
	}
}

/* Names of one kind as a JSON array member of extra and a phrase of msg, each cut short
 * ("...") rather than past its share of the line. */
static int names(enum change k, const struct bw_config *of, const struct bw_config *other,
		 char *extra, size_t cap, size_t *n, char *msg, size_t mcap, size_t *m)
{
	static const char *const key[] = { "added", "removed", "changed" };
	char arr[900];
	size_t a = 0;
	int count = 0;
	arr[0] = '\0';
	bw_json_raw(arr, sizeof arr, &a, "[");
	for (int i = 0; i < of->n_rules; i++) {
		if (!is(k, of, i, other))
			continue;
		size_t before = a;
		if (count)
			bw_json_raw(arr, sizeof arr, &a, ",");
		bw_json_str(arr, sizeof arr, &a, of->rules[i].name);
		if (a + 8 >= sizeof arr) {
			a = before;
			arr[a] = '\0';
			bw_json_raw(arr, sizeof arr, &a, count ? ",\"...\"" : "\"...\"");
			count++;
			break;
		}
		int w = count ? snprintf(msg + *m, mcap - *m, ", %s", of->rules[i].name)
			      : snprintf(msg + *m, mcap - *m, "%s%s %s", *m ? "; " : "", key[k],
					 of->rules[i].name);
		if (w > 0 && (size_t)w < mcap - *m)
			*m += (size_t)w;
		count++;
	}
	bw_json_raw(arr, sizeof arr, &a, "]");
	bw_json_raw(extra, cap, n, ",\"");
	bw_json_raw(extra, cap, n, key[k]);
	bw_json_raw(extra, cap, n, "\":");
	bw_json_raw(extra, cap, n, arr);
	return count;
}

static const char *mode_name(enum bw_mode m)
{
	return m == BW_MODE_OBSERVE ? "observe" : "enforce";
}

void bw_engine_reload_event(struct bw_engine *e, const struct bw_config *before,
			    const char *file, int asked)
{
	const struct bw_config *now = e->cfg;
	unsigned d = bw_config_differs(before, now);
	char extra[BW_EVENT_MAX - 1024], msg[640];
	size_t n = 0, m = 0;
	extra[0] = msg[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"file\":");
	bw_json_str(extra, sizeof extra, &n, file);
	bw_json_raw(extra, sizeof extra, &n, ",\"gen\":");
	bw_json_uint(extra, sizeof extra, &n, e->gen);
	bw_json_raw(extra, sizeof extra, &n, ",\"mode\":");
	bw_json_str(extra, sizeof extra, &n, mode_name(e->mode));
	if (asked)
		bw_json_raw(extra, sizeof extra, &n, ",\"asked\":true");
	int any = names(ADDED, now, before, extra, sizeof extra, &n, msg, sizeof msg, &m);
	any += names(REMOVED, before, now, extra, sizeof extra, &n, msg, sizeof msg, &m);
	any += names(CHANGED, now, before, extra, sizeof extra, &n, msg, sizeof msg, &m);
	if ((d & BW_CFG_RULES) && !any)
		m += (size_t)snprintf(msg + m, sizeof msg - m, "%srules reordered", m ? "; " : "");
	if ((d & BW_CFG_MODE) && m < sizeof msg)
		m += (size_t)snprintf(msg + m, sizeof msg - m, "%smode %s -> %s", m ? "; " : "",
				      mode_name(before->mode), mode_name(now->mode));
	if ((d & BW_CFG_LEVEL) && m < sizeof msg)
		m += (size_t)snprintf(msg + m, sizeof msg - m, "%slog level %s -> %s",
				      m ? "; " : "", bw_level_name(before->log.level),
				      bw_level_name(now->log.level));
	if ((d & BW_CFG_SEED) && m < sizeof msg)
		m += (size_t)snprintf(msg + m, sizeof msg - m, "%sseed changed", m ? "; " : "");
	if ((d & (BW_CFG_LOG | BW_CFG_STATE)) && m < sizeof msg)
		m += (size_t)snprintf(msg + m, sizeof msg - m,
				      "%s%s%s%s keep their settings until the program restarts",
				      m ? "; " : "", d & BW_CFG_LOG ? "log.sink" : "",
				      (d & BW_CFG_LOG) && (d & BW_CFG_STATE) ? " and " : "",
				      d & BW_CFG_STATE ? "state" : "");
	char text[sizeof msg + 64];
	snprintf(text, sizeof text, "%s%s", d ? "policy reloaded: " : "policy file read again: ",
		 d ? msg : "nothing changed");
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_RELOAD, d ? BW_LVL_WARN : BW_LVL_INFO);
	ev.msg = text;
	ev.extra = extra;
	bw_engine_emit(e, NULL, &ev);
}

void bw_engine_reload_error(struct bw_engine *e, const struct bw_diag *d, const char *file,
			    int asked)
{
	char where[600], msg[700], extra[PATH_MAX + 256];
	size_t n = 0;
	if (d)
		bw_diag_format(d, where, sizeof where);
	else
		snprintf(where, sizeof where, "%s: cannot be loaded", file);
	snprintf(msg, sizeof msg, "%s; the policy in force stays", where);
	extra[0] = '\0';
	bw_json_raw(extra, sizeof extra, &n, "\"file\":");
	bw_json_str(extra, sizeof extra, &n, file);
	bw_json_raw(extra, sizeof extra, &n, ",\"line\":");
	bw_json_int(extra, sizeof extra, &n, d ? d->line : 0);
	bw_json_raw(extra, sizeof extra, &n, ",\"col\":");
	bw_json_int(extra, sizeof extra, &n, d ? d->col : 0);
	bw_json_raw(extra, sizeof extra, &n, ",\"gen\":");
	bw_json_uint(extra, sizeof extra, &n, e->gen);
	if (asked)
		bw_json_raw(extra, sizeof extra, &n, ",\"asked\":true");
	struct bw_event ev;
	bw_event_init(&ev, BW_EV_RELOAD, BW_LVL_ERROR);
	ev.msg = msg;
	ev.extra = extra;
	bw_engine_emit(e, NULL, &ev);
}
