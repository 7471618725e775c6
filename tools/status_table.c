/* `bulwark status` for people: within 79 columns, as `bulwark report` prints. Per live
 * group: its processes, then one line per rule and destination; stale groups (every
 * process gone) last, one line each. Long names are cut with an ellipsis (not with
 * --wide); --format json has everything whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "breaker.h"
#include "report.h"
#include "table.h"
#include "status_model.h"

/* A line of text as long as the terminal takes, or whole (--wide). */
static size_t line_max(void)
{
	return bw_tab_wide ? (size_t)-1 : BW_LINE_MAX;
}

/* ---- cells ---- */

static void breaker_cell(char *buf, size_t cap, const struct bw_st_dest *d)
{
	if (!d->has_breaker) {
		snprintf(buf, cap, "-");
	} else if (d->pos == BW_BRK_OPEN) {
		/* how long until a call may probe it (the next call then does) */
		char left[16];
		bw_rp_fmt_dur(left, sizeof left, d->open_left_us);
		if (d->open_left_us > 0)
			snprintf(buf, cap, "open %s", left);
		else
			snprintf(buf, cap, "open, due");
	} else {
		snprintf(buf, cap, "%s", bw_brk_name(d->pos));
	}
}

static void tokens_cell(char *buf, size_t cap, const struct bw_st_dest *d)
{
	char t[16], b[16];
	if (!d->has_bucket) {
		snprintf(buf, cap, "-");
		return;
	}
	bw_st_fmt_tokens(t, sizeof t, d->tokens);
	if (d->bucket_known) {
		/* a burst is most often a whole number: 5, not 5.0 */
		if (d->burst < 100 && d->burst == (double)(long)d->burst)
			snprintf(b, sizeof b, "%ld", (long)d->burst);
		else
			bw_st_fmt_tokens(b, sizeof b, d->burst);
		snprintf(buf, cap, "%s/%s", t, b);
	} else if (d->tokens_age_us >= 0) {
		bw_rp_fmt_dur(b, sizeof b, d->tokens_age_us);
		snprintf(buf, cap, "%s %s ago", t, b);
	} else {
		snprintf(buf, cap, "%s", t);
	}
}

static const char *plural(long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void breaker_counts(FILE *out, const long b[3])
{
	long total = b[0] + b[1] + b[2];
	if (!total) {
		fputs("no breaker", out);
		return;
	}
	fprintf(out, "%ld %s: %ld closed, %ld half_open, %ld open", total,
		plural(total, "breaker", "breakers"), b[BW_BRK_CLOSED], b[BW_BRK_HALF_OPEN],
		b[BW_BRK_OPEN]);
}

static const struct bw_col proc_cols[] = {
	{ "PID", 0, 0, 0 }, { "PROG", 1, 0, 16 }, { "STARTED", 1, 0, 20 }, { "UP", 0, 0, 0 },
};

static const struct bw_col dest_cols[] = {
	{ "RULE", 1, 0, 14 }, { "DEST", 1, 1, 22 }, { "BREAKER", 1, 0, 10 },
	{ "CONSEC", 0, 0, 0 }, { "FAILS", 0, 0, 0 }, { "TOKENS", 0, 0, 0 },
	{ "HEALTH", 1, 0, 9 },
};
/* The same with the bulkheads' slots, for a group that has one. */
static const struct bw_col dest_slot_cols[] = {
	{ "RULE", 1, 0, 14 }, { "DEST", 1, 1, 20 }, { "BREAKER", 1, 0, 10 },
	{ "CONSEC", 0, 0, 0 }, { "FAILS", 0, 0, 0 }, { "TOKENS", 0, 0, 0 },
	{ "SLOTS", 0, 0, 0 }, { "HEALTH", 1, 0, 9 },
};

static void live_group(FILE *out, const struct bw_status *st, const struct bw_st_group *g)
{
	char line[1024], fit[1024];
	snprintf(line, sizeof line, "group %s: %s, %zu %s", g->group, bw_health_name(g->health),
		 g->alive, plural((long)g->alive, "process", "processes"));
	bw_rp_fit(fit, sizeof fit, line, line_max(), 0);
	fprintf(out, "\n%s\n", fit);
	if (g->policy[0])
		snprintf(line, sizeof line, "policy: %s%s", g->policy,
			 g->policy_loaded ? "" : " (not readable now: tokens as stored, failures "
			 "over every slot kept)");
	else
		snprintf(line, sizeof line, "policy: unknown (tokens as stored, failures over "
			 "every slot kept)");
	bw_rp_fit(fit, sizeof fit, line, line_max(), 1);
	fprintf(out, "%s\n", fit);

	struct bw_tab t = { proc_cols, 4, NULL, 0, 0, 6 };
	for (size_t i = 0; i < g->n_procs; i++) {
		const struct bw_st_proc *p = &g->procs[i];
		if (!p->alive)
			continue;
		char pid[24], started[40], up[16];
		snprintf(pid, sizeof pid, "%ld", p->pid);
		bw_st_fmt_time(started, sizeof started, p->started_us);
		if (p->started_us > 0 && st->now_wall_us >= p->started_us)
			bw_rp_fmt_dur(up, sizeof up, st->now_wall_us - p->started_us);
		else
			snprintf(up, sizeof up, "-");
		const char *cells[4] = { pid, p->prog[0] ? p->prog : "?", started, up };
		bw_tab_row(&t, cells);
	}
	bw_tab_print(out, &t);
	bw_tab_free(&t);
	if (g->n_procs > g->alive)
		fprintf(out, "(and %zu that died without leaving the group)\n",
			g->n_procs - g->alive);

	fputc('\n', out);
	if (!g->n_dests) {
		fputs("no breaker or limiter used yet\n", out);
		return;
	}
	int slots_col = 0;
	for (size_t i = 0; i < g->n_dests; i++)
		slots_col |= g->dests[i].has_bulk;
	t = slots_col ? (struct bw_tab){ dest_slot_cols, 8, NULL, 0, 0, 6 }
		      : (struct bw_tab){ dest_cols, 7, NULL, 0, 0, 6 };
	for (size_t i = 0; i < g->n_dests; i++) {
		const struct bw_st_dest *d = &g->dests[i];
		char brk[32], consec[16] = "-", fails[48] = "-", tok[48];
		breaker_cell(brk, sizeof brk, d);
		if (d->has_breaker) {
			snprintf(consec, sizeof consec, "%d", d->consecutive);
			snprintf(fails, sizeof fails, "%ld/%ld", d->window_fails, d->window_calls);
		}
		tokens_cell(tok, sizeof tok, d);
		char slots[48] = "-";
		/* a bulkhead's slots held now, of its size */
		if (d->has_bulk && d->bulk_max)
			snprintf(slots, sizeof slots, "%ld/%ld", d->in_use, d->bulk_max);
		else if (d->has_bulk)
			snprintf(slots, sizeof slots, "%ld", d->in_use);
		const char *health = d->has_breaker ? bw_health_name(d->health) : "-";
		const char *cells[8] = {
			g->rules[d->rule].name, d->dest, brk, consec, fails, tok,
			slots_col ? slots : health, health,
		};
		bw_tab_row(&t, cells);
	}
	bw_tab_print(out, &t);
	bw_tab_free(&t);
}

static const struct bw_col stale_cols[] = {
	{ "GROUP", 1, 0, 16 }, { "PROCS", 0, 0, 0 }, { "CREATED", 1, 0, 20 },
	{ "FILE", 1, 1, 24 },
};

static void stale_groups(FILE *out, const struct bw_status *st)
{
	if (!st->stale)
		return;
	fputs("\nSTALE (every process is gone; the file is left over: --prune removes it)\n", out);
	struct bw_tab t = { stale_cols, 4, NULL, 0, 0, 6 };
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		if (g->live)
			continue;
		char procs[24], created[40];
		snprintf(procs, sizeof procs, "%zu", g->n_procs);
		bw_st_fmt_time(created, sizeof created, g->created_us);
		const char *cells[4] = { g->group, procs, created, g->file };
		bw_tab_row(&t, cells);
	}
	bw_tab_print(out, &t);
	bw_tab_free(&t);
}

int bw_status_print_table(const struct bw_status *st, FILE *out)
{
	char line[sizeof st->dir + 64], fit[sizeof line];
	snprintf(line, sizeof line, "bulwark status: %s", st->dir);
	bw_rp_fit(fit, sizeof fit, line, line_max(), 1);
	fprintf(out, "%s\n", fit);
	fprintf(out, "health: %s", bw_health_name(st->health));
	if (st->live) {
		fputs(" (", out);
		breaker_counts(out, st->breakers);
		fputc(')', out);
	}
	fputc('\n', out);
	if (st->dir_error) {
		fputs("no group: the directory cannot be read\n", out);
	} else if (!st->dir_exists) {
		fputs("no group: the directory does not exist (no group has run here)\n", out);
	} else if (!st->live && st->want) {
		snprintf(line, sizeof line, "no live group named %s", st->want);
		bw_rp_fit(fit, sizeof fit, line, line_max(), 0);
		fprintf(out, "%s\n", fit);
	} else if (!st->live) {
		fprintf(out, "no live group%s\n", st->stale ? "" : " (no state file)");
	} else {
		fprintf(out, "%zu live %s", st->live, plural((long)st->live, "group", "groups"));
		if (st->stale)
			fprintf(out, ", %zu stale", st->stale);
		fputc('\n', out);
	}
	for (size_t i = 0; i < st->n_groups; i++)
		if (st->groups[i].live)
			live_group(out, st, &st->groups[i]);
	stale_groups(out, st);
	return 0;
}
