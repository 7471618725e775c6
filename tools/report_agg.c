/* `bulwark report`: adding events up per rule and destination, and per rule from the
 * exit events' counters. Plain C, no JSON: the reader hands over decoded fields. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report.h"

const char *const bw_rp_count_keys[BW_RP_NCOUNT] = {
	"retries", "recovered", "rejected", "throttled", "limited",
	"injected", "breaker_opens", "timeouts", "failovers", "bulkhead_full", "shed",
};

/* As the library's exit event spells them (engine/engine.c). */
const char *const bw_rp_stat_keys[BW_RP_NSTAT] = {
	"calls", "failures", "retries", "recovered", "gave_up",
	"rejected", "throttled", "limited", "injected", "bulkhead_full", "shed",
};

/* ---- memory: a report with lost events would be a wrong report, so no partial one ---- */

static void *xrealloc(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		n = SIZE_MAX;    /* make the request fail rather than wrap */
	size_t bytes = n * size;
	void *q = realloc(p, bytes ? bytes : 1);
	if (!q) {
		fputs("bulwark report: out of memory\n", stderr);
		exit(1);
	}
	return q;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = xrealloc(NULL, n, 1);
	memcpy(d, s, n);
	return d;
}

/* Grow an array of *cap elements so that one more fits. */
static void *grow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 8;
	return xrealloc(v, *cap, size);
}

/* ---- tallies and delays ---- */

static void tally_add(struct bw_rp_tally *t, const char *name, long long n)
{
	t->total += n;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].name, name) == 0) {
			t->v[i].n += n;
			return;
		}
	}
	t->v = grow(t->v, t->n, &t->cap, sizeof *t->v);
	t->v[t->n].name = xstrdup(name);
	t->v[t->n].n = n;
	t->n++;
}

static void tally_free(struct bw_rp_tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
}

/* Most first, then by name: the order every format shows. */
static int tally_item_cmp(const void *a, const void *b)
{
	const struct bw_rp_tally_item *x = a, *y = b;
	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void tally_sort(struct bw_rp_tally *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof *t->v, tally_item_cmp);
}

/* Delays are logged in milliseconds with microsecond precision: keep them as integers
 * so that totals are exact and never print as 0.30000000000000004. */
static void delay_add(struct bw_rp_delays *d, double ms)
{
	if (!(ms >= 0) || !isfinite(ms))
		return;
	if (ms > 9e12)           /* ~285 years: keeps the sum inside int64 for 30000 of them */
		ms = 9e12;
	int64_t us = (int64_t)llround(ms * 1000.0);
	d->us = grow(d->us, d->n, &d->cap, sizeof *d->us);
	d->us[d->n++] = us;
	d->total_us += us;
}

static int us_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int64_t bw_rp_quantile(struct bw_rp_delays *d, double q)
{
	if (!d->n)
		return -1;
	/* Sorting an already sorted array is cheap enough; no flag to keep in step. */
	qsort(d->us, d->n, sizeof *d->us, us_cmp);
	double rank = ceil(q * (double)d->n);
	size_t i = rank < 1 ? 0 : (size_t)rank - 1;
	if (i >= d->n)
		i = d->n - 1;
	return d->us[i];
}

static void side_free(struct bw_rp_side *s)
{
	tally_free(&s->errs);
	tally_free(&s->gave_up);
	free(s->delays.us);
}

long long bw_rp_flakiness(const struct bw_rp_side *s)
{
	return s->errs.total + s->gave_up.total + s->count[BW_RP_REJECTED];
}

int bw_rp_side_empty(const struct bw_rp_side *s)
{
	return s->events == 0;
}

/* ---- groups: one per rule and destination ---- */

static size_t hash2(const char *a, const char *b)
{
	/* FNV-1a over both strings with the NUL between them, so ("ab","c") != ("a","bc"). */
	uint64_t h = 1469598103934665603u;
	for (const unsigned char *p = (const unsigned char *)a;; p++) {
		h = (h ^ *p) * 1099511628211u;
		if (!*p)
			break;
	}
	for (const unsigned char *p = (const unsigned char *)b; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return (size_t)h;
}

static void rehash(struct bw_report *r)
{
	size_t n = r->n_slots ? r->n_slots * 2 : 64;
	free(r->slots);
	r->slots = xrealloc(NULL, n, sizeof *r->slots);
	memset(r->slots, 0, n * sizeof *r->slots);
	r->n_slots = n;
	for (size_t i = 0; i < r->n_groups; i++) {
		size_t s = hash2(r->groups[i]->rule, r->groups[i]->dest) & (n - 1);
		while (r->slots[s])
			s = (s + 1) & (n - 1);
		r->slots[s] = i + 1;
	}
}

static struct bw_rp_group *group_of(struct bw_report *r, const char *rule, const char *dest)
{
	if ((r->n_groups + 1) * 2 > r->n_slots)
		rehash(r);
	size_t mask = r->n_slots - 1, s = hash2(rule, dest) & mask;
	for (; r->slots[s]; s = (s + 1) & mask) {
		struct bw_rp_group *g = r->groups[r->slots[s] - 1];
		if (strcmp(g->rule, rule) == 0 && strcmp(g->dest, dest) == 0)
			return g;
	}
	struct bw_rp_group *g = xrealloc(NULL, 1, sizeof *g);
	memset(g, 0, sizeof *g);
	g->rule = xstrdup(rule);
	g->dest = xstrdup(dest);
	r->groups = grow(r->groups, r->n_groups, &r->cap_groups, sizeof *r->groups);
	r->groups[r->n_groups++] = g;
	r->slots[s] = r->n_groups;
	return g;
}

/* ---- processes ---- */

/* The pid's slot in the set, added if new: its flags are r->pid_used[slot]. */
static size_t pid_insert(struct bw_report *r, long long pid)
{
	if ((r->n_pids + 1) * 2 > r->cap_pids) {
		size_t ncap = r->cap_pids ? r->cap_pids * 2 : 64;
		long long *np = xrealloc(NULL, ncap, sizeof *np);
		unsigned char *nu = xrealloc(NULL, ncap, 1);
		memset(nu, 0, ncap);
		for (size_t i = 0; i < r->cap_pids; i++) {
			if (!r->pid_used[i])
				continue;
			size_t s = (size_t)((unsigned long long)r->pids[i] * 0x9E3779B97F4A7C15u) & (ncap - 1);
			while (nu[s])
				s = (s + 1) & (ncap - 1);
			np[s] = r->pids[i];
			nu[s] = r->pid_used[i];
		}
		free(r->pids);
		free(r->pid_used);
		r->pids = np;
		r->pid_used = nu;
		r->cap_pids = ncap;
	}
	size_t mask = r->cap_pids - 1;
	size_t s = (size_t)((unsigned long long)pid * 0x9E3779B97F4A7C15u) & mask;
	for (; r->pid_used[s]; s = (s + 1) & mask)
		if (r->pids[s] == pid)
			return s;
	r->pids[s] = pid;
	r->pid_used[s] = BW_RP_PID_SEEN;
	r->n_pids++;
	return s;
}

/* ---- rules (exit stats) ---- */

static struct bw_rp_rule *rule_of(struct bw_report *r, const char *name)
{
	/* A handful of rules per policy: a linear search is the simplest right thing. */
	for (size_t i = 0; i < r->n_rules; i++)
		if (strcmp(r->rules[i].name, name) == 0)
			return &r->rules[i];
	r->rules = grow(r->rules, r->n_rules, &r->cap_rules, sizeof *r->rules);
	struct bw_rp_rule *x = &r->rules[r->n_rules++];
	memset(x, 0, sizeof *x);
	x->name = xstrdup(name);
	return x;
}

void bw_report_add_stat(struct bw_report *r, const char *rule, enum bw_rp_stat st, long long v)
{
	if ((unsigned)st < BW_RP_NSTAT)
		rule_of(r, rule)->stat[st] += v;
}

void bw_report_rule_seen(struct bw_report *r, const char *rule)
{
	rule_of(r, rule)->processes++;
}

/* ---- events ---- */

void bw_report_init(struct bw_report *r)
{
	memset(r, 0, sizeof *r);
}

void bw_report_free(struct bw_report *r)
{
	for (size_t i = 0; i < r->n_groups; i++) {
		side_free(&r->groups[i]->did);
		side_free(&r->groups[i]->observed);
		free(r->groups[i]->rule);
		free(r->groups[i]->dest);
		free(r->groups[i]);
	}
	free(r->groups);
	free(r->slots);
	for (size_t i = 0; i < r->n_rules; i++)
		free(r->rules[i].name);
	free(r->rules);
	free(r->pids);
	free(r->pid_used);
	tally_free(&r->top_errs);
	tally_free(&r->gave_up_reasons);
	free(r->top_errs_dests);
	memset(r, 0, sizeof *r);
}

static void note_ts(struct bw_report *r, const char *ts)
{
	int64_t us;
	if (!ts || bw_rp_parse_ts(ts, &us) != 0 || strlen(ts) >= sizeof r->first_ts)
		return;
	if (!r->have_ts || us < r->first_us) {
		r->first_us = us;
		strcpy(r->first_ts, ts);
	}
	if (!r->have_ts || us > r->last_us) {
		r->last_us = us;
		strcpy(r->last_ts, ts);
	}
	r->have_ts = 1;
}

/* Events about calls, and which counter each one feeds. */
enum kind { K_FAIL, K_GAVE_UP, K_COUNT };
static const struct {
	const char *event;
	enum kind kind;
	enum bw_rp_count count;
	int delay;               /* its delay_ms is delay the library added */
} call_events[] = {
	{ "fail", K_FAIL, 0, 0 },
	{ "gave_up", K_GAVE_UP, 0, 0 },
	{ "retry", K_COUNT, BW_RP_RETRIES, 1 },
	{ "recovered", K_COUNT, BW_RP_RECOVERED, 0 },
	{ "rejected", K_COUNT, BW_RP_REJECTED, 0 },
	{ "throttled", K_COUNT, BW_RP_THROTTLED, 1 },
	{ "limited", K_COUNT, BW_RP_LIMITED, 0 },
	{ "injected", K_COUNT, BW_RP_INJECTED, 1 },
	{ "breaker", K_COUNT, BW_RP_BREAKER_OPENS, 0 },
	{ "timeout", K_COUNT, BW_RP_TIMEOUTS, 0 },
	{ "failover", K_COUNT, BW_RP_FAILOVERS, 0 },
	{ "bulkhead_full", K_COUNT, BW_RP_BULKHEAD_FULL, 1 },
	{ "shed", K_COUNT, BW_RP_SHED, 0 },
};

void bw_report_add(struct bw_report *r, const struct bw_rp_event *ev)
{
	r->events++;
	unsigned char flags = 0;
	if (ev->lvl && (strcmp(ev->lvl, "info") == 0 || strcmp(ev->lvl, "debug") == 0))
		r->info_events++;
	else if (ev->lvl && (strcmp(ev->lvl, "warn") == 0 || strcmp(ev->lvl, "error") == 0))
		r->warn_events++;
	if (strcmp(ev->event, "start") == 0)
		flags = BW_RP_PID_START | (ev->no_summary ? BW_RP_PID_NO_SUMMARY : 0);
	else if (strcmp(ev->event, "exit") == 0)
		flags = BW_RP_PID_EXIT;
	if (ev->has_pid) {
		size_t slot = pid_insert(r, ev->pid);   /* first: it may move pid_used */
		r->pid_used[slot] |= flags;
	}
	note_ts(r, ev->ts);
	if (strcmp(ev->event, "config_error") == 0) {
		r->config_errors++;
		return;
	}
	if (strcmp(ev->event, "warning") == 0) {
		r->warnings++;
		return;
	}
	if (strcmp(ev->event, "reload") == 0) {
		r->reloads++;
		r->reload_errors += ev->lvl && strcmp(ev->lvl, "error") == 0;
		return;
	}
	size_t k = 0, n = sizeof call_events / sizeof call_events[0];
	while (k < n && strcmp(ev->event, call_events[k].event) != 0)
		k++;
	if (k == n)              /* start, exit, or an event newer than this tool */
		return;
	/* Only transitions to open say a destination went down; half_open and closed are
	 * the way back. */
	if (strcmp(ev->event, "breaker") == 0 && !(ev->to && strcmp(ev->to, "open") == 0))
		return;

	const char *dest = ev->dest ? ev->dest : ev->db ? ev->db : ev->host ? ev->host : "-";
	/* A failover names the fallback as dest; it is the destination left behind that
	 * failed, so that is where it counts. */
	if (strcmp(ev->event, "failover") == 0 && ev->from)
		dest = ev->from;
	struct bw_rp_group *g = group_of(r, ev->rule ? ev->rule : "-", dest);
	struct bw_rp_side *s = ev->observe ? &g->observed : &g->did;
	s->events++;
	switch (call_events[k].kind) {
	case K_FAIL:
		tally_add(&s->errs, ev->err ? ev->err : "unknown", 1);
		break;
	case K_GAVE_UP:
		tally_add(&s->gave_up, ev->reason ? ev->reason : "unknown", 1);
		break;
	case K_COUNT:
		s->count[call_events[k].count]++;
		break;
	}
	if (call_events[k].delay && ev->has_delay)
		delay_add(&s->delays, ev->delay_ms);
}

/* ---- notes: why figures are missing ---- */

static void note(struct bw_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct bw_report *r, const char *fmt, ...)
{
	if (r->n_notes >= BW_RP_MAX_NOTES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->n_notes++], BW_RP_NOTE_MAX, fmt, ap);
	va_end(ap);
}

/* Each missing piece is named by its cause, which the log itself shows: no info events
 * at all means the level was warn; a start without an exit, a process that never ran its
 * exit handlers; a start that says summary false, a policy that turned exit events off. */
static void find_notes(struct bw_report *r)
{
	long long started = 0, unended = 0, no_summary = 0;
	for (size_t i = 0; i < r->cap_pids; i++) {
		unsigned char f = r->pid_used ? r->pid_used[i] : 0;
		if (!(f & BW_RP_PID_START))
			continue;
		started++;
		if (f & BW_RP_PID_NO_SUMMARY)
			no_summary++;
		else if (!(f & BW_RP_PID_EXIT))
			unended++;
	}
	r->n_notes = 0;
	if (!r->events) {
		note(r, "no events were read: nothing was logged there. Under bulwark run, "
		     "-o file:PATH sends the events of every process to PATH; a static or Go "
		     "program, which LD_PRELOAD cannot reach, logs nothing");
		return;
	}
	if (!r->info_events && r->warn_events)
		note(r, "only warn and error events were logged: the processes logged at level "
		     "warn (the default on stderr, or -l warn), which leaves out the start, fail "
		     "and exit events at level info; without them failures that were not retried "
		     "and every per-rule counter are missing. A file sink logs at info unless "
		     "the policy's log.level or -l says otherwise");
	if (unended)
		note(r, "%lld of %lld processes logged a start but no exit event: killed by a "
		     "signal, crashed, ended with _exit(2), replaced by a program without the "
		     "library, or still running; their calls are missing from the per-rule "
		     "counters", unended, started);
	if (no_summary)
		note(r, "%lld of %lld processes ran with log.summary: false, which turns exit "
		     "events and their per-rule counters off", no_summary, started);
}

/* ---- finishing ---- */

static int group_cmp(const void *a, const void *b)
{
	const struct bw_rp_group *x = *(const struct bw_rp_group *const *)a;
	const struct bw_rp_group *y = *(const struct bw_rp_group *const *)b;
	long long fx = bw_rp_flakiness(&x->did), fy = bw_rp_flakiness(&y->did);
	if (fx != fy)
		return fx > fy ? -1 : 1;
	/* an observe-only log still puts what would have failed most first */
	fx = bw_rp_flakiness(&x->observed);
	fy = bw_rp_flakiness(&y->observed);
	if (fx != fy)
		return fx > fy ? -1 : 1;
	int c = strcmp(x->dest, y->dest);
	return c ? c : strcmp(x->rule, y->rule);
}

static long long rule_flakiness(const struct bw_rp_rule *x)
{
	return x->stat[BW_RP_ST_FAILURES] + x->stat[BW_RP_ST_GAVE_UP] + x->stat[BW_RP_ST_REJECTED];
}

static int rule_cmp(const void *a, const void *b)
{
	const struct bw_rp_rule *x = a, *y = b;
	long long fx = rule_flakiness(x), fy = rule_flakiness(y);
	if (fx != fy)
		return fx > fy ? -1 : 1;
	return strcmp(x->name, y->name);
}

void bw_report_finish(struct bw_report *r)
{
	if (r->n_groups > 1)
		qsort(r->groups, r->n_groups, sizeof *r->groups, group_cmp);
	if (r->n_rules > 1)
		qsort(r->rules, r->n_rules, sizeof *r->rules, rule_cmp);
	/* the index holds positions, which the sort just changed; nothing is added now */
	free(r->slots);
	r->slots = NULL;
	r->n_slots = 0;

	tally_free(&r->top_errs);
	tally_free(&r->gave_up_reasons);
	memset(&r->top_errs, 0, sizeof r->top_errs);
	memset(&r->gave_up_reasons, 0, sizeof r->gave_up_reasons);
	for (size_t i = 0; i < r->n_groups; i++) {
		struct bw_rp_side *s = &r->groups[i]->did;
		tally_sort(&s->errs);
		tally_sort(&s->gave_up);
		const struct bw_rp_tally *seen = &r->groups[i]->observed.errs;
		tally_sort(&r->groups[i]->observed.errs);
		tally_sort(&r->groups[i]->observed.gave_up);
		/* a fail event is a real failure in observe mode too: only the reaction to it
		 * was left out, so the top errors count both */
		for (size_t j = 0; j < s->errs.n; j++)
			tally_add(&r->top_errs, s->errs.v[j].name, s->errs.v[j].n);
		for (size_t j = 0; j < seen->n; j++)
			tally_add(&r->top_errs, seen->v[j].name, seen->v[j].n);
		for (size_t j = 0; j < s->gave_up.n; j++)
			tally_add(&r->gave_up_reasons, s->gave_up.v[j].name, s->gave_up.v[j].n);
	}
	tally_sort(&r->top_errs);
	tally_sort(&r->gave_up_reasons);
	free(r->top_errs_dests);
	r->top_errs_dests = xrealloc(NULL, r->top_errs.n, sizeof *r->top_errs_dests);
	for (size_t k = 0; k < r->top_errs.n; k++) {
		r->top_errs_dests[k] = 0;
		for (size_t i = 0; i < r->n_groups; i++) {
			const struct bw_rp_tally *t[2] = { &r->groups[i]->did.errs,
							   &r->groups[i]->observed.errs };
			int found = 0;
			for (int side = 0; side < 2 && !found; side++)
				for (size_t j = 0; j < t[side]->n && !found; j++)
					found = strcmp(t[side]->v[j].name, r->top_errs.v[k].name) == 0;
			r->top_errs_dests[k] += found;
		}
	}
	find_notes(r);
}
