/* `bulwark report --format html`: one page that needs nothing but a browser, offline: a
 * timeline per process and destination (calls, failures, retries, breaker state,
 * throttling), drawn here as inline SVG with a <title> on every mark for its details,
 * and the tables of the text report. Every string from a log is escaped: a destination
 * or program name is whatever a process said it was. A few lines of inline script count
 * what was drawn into the page (#drawn), for people and for tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fx.h"
#include "ops.h"
#include "report.h"

#define LABEL_W 300              /* room for the row names */
#define PLOT_W 880
#define ROW_H 20
#define AXIS_H 28
#define MAX_ROWS 400

static void esc(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			/* control characters have no business in a page, nor a NUL-free log */
			if (*p < 0x20 && *p != '\t' && *p != '\n')
				fputc('?', out);
			else
				fputc(*p, out);
		}
	}
}

struct row {
	int proc;
	const char *dest;        /* NULL: the process's own row */
	unsigned ops;            /* the ops seen on it, by name below */
	int is_proc;
};

struct page {
	struct bw_fx *m;
	struct row *rows;
	size_t n, cap;
	size_t dropped;
	int64_t t0, t1;
	long long marks[BW_FX_OTHER + 1];
	long long bands, bars;
};

static void *xrealloc(void *p, size_t n, size_t size)
{
	void *q = realloc(p, n * size != 0 ? n * size : 1);
	if (!q) {
		fputs("bulwark report: out of memory\n", stderr);
		exit(1);
	}
	return q;
}

static void span(struct page *pg, int64_t us)
{
	if (!us)
		return;
	if (!pg->t0 || us < pg->t0)
		pg->t0 = us;
	if (us > pg->t1)
		pg->t1 = us;
}

static int row_of(struct page *pg, int proc, const char *dest, int is_proc)
{
	for (size_t i = 0; i < pg->n; i++)
		if (pg->rows[i].proc == proc && pg->rows[i].is_proc == is_proc &&
		    (is_proc || strcmp(pg->rows[i].dest, dest) == 0))
			return (int)i;
	if (pg->n >= MAX_ROWS) {
		pg->dropped++;
		return -1;
	}
	if (pg->n == pg->cap) {
		pg->cap = pg->cap ? pg->cap * 2 : 32;
		pg->rows = xrealloc(pg->rows, pg->cap, sizeof *pg->rows);
	}
	pg->rows[pg->n] = (struct row){ proc, dest, 0, is_proc };
	return (int)pg->n++;
}

static void note_op(struct page *pg, int row, const char *op)
{
	int i = bw_fx_op(op);
	if (row >= 0 && i >= 0)
		pg->rows[row].ops |= 1u << i;
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	if (x->is_proc != y->is_proc)
		return x->is_proc ? -1 : 1;
	return strcmp(x->dest ? x->dest : "", y->dest ? y->dest : "");
}

/* Rows: a process that logged anything about a call, then one per destination it
 * called. Processes that did nothing worth a row are left out. */
static void layout(struct page *pg)
{
	struct bw_fx *m = pg->m;
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		if (!e->dest)
			continue;
		row_of(pg, e->proc, NULL, 1);
		note_op(pg, row_of(pg, e->proc, e->dest, 0), e->op);
		span(pg, e->us);
		if (e->kind == BW_FX_OUTAGE && e->elapsed_ms > 0)
			span(pg, e->us - (int64_t)(e->elapsed_ms * 1000));
	}
	for (size_t i = 0; i < m->n_calls; i++) {
		const struct bw_fx_calls *c = &m->calls[i];
		row_of(pg, c->proc, NULL, 1);
		note_op(pg, row_of(pg, c->proc, c->dest, 0), c->op);
		span(pg, c->first_us);
		span(pg, c->last_us);
	}
	for (size_t i = 0; i < pg->n; i++)
		if (pg->rows[i].is_proc) {
			span(pg, m->procs[pg->rows[i].proc].start_us);
			span(pg, m->procs[pg->rows[i].proc].end_us);
		}
	if (pg->n > 1)
		qsort(pg->rows, pg->n, sizeof *pg->rows, row_cmp);
	if (pg->t1 <= pg->t0)
		pg->t1 = pg->t0 + 1000;
}

static double xof(const struct page *pg, int64_t us)
{
	if (us < pg->t0)
		us = pg->t0;
	if (us > pg->t1)
		us = pg->t1;
	return LABEL_W + (double)(us - pg->t0) * PLOT_W / (double)(pg->t1 - pg->t0);
}

static int find_row(const struct page *pg, int proc, const char *dest)
{
	for (size_t i = 0; i < pg->n; i++)
		if (pg->rows[i].proc == proc && !pg->rows[i].is_proc &&
		    strcmp(pg->rows[i].dest, dest) == 0)
			return (int)i;
	return -1;
}

static double yof(int row)
{
	return AXIS_H + (double)row * ROW_H + ROW_H / 2.0;
}

static void ms_text(FILE *out, int64_t us)
{
	char b[32];
	bw_rp_fmt_dur(b, sizeof b, us);
	fputs(b, out);
}

/* The tooltip of an event: what, when, where. */
static void tip(FILE *out, const struct page *pg, const struct bw_fx_ev *e)
{
	fputs("<title>", out);
	esc(out, bw_fx_kind_name(e->kind));
	if (e->op) {
		fputc(' ', out);
		esc(out, e->op);
	}
	if (e->err) {
		fputc(' ', out);
		esc(out, e->err);
	}
	if (e->reason) {
		fputs(" (", out);
		esc(out, e->reason);
		fputc(')', out);
	}
	if (e->from || e->to) {
		fputc(' ', out);
		esc(out, e->from ? e->from : "?");
		fputs(" -> ", out);
		esc(out, e->to ? e->to : "?");
	}
	if (e->n)
		fprintf(out, ", attempt #%lld", e->n);
	if (e->attempt >= 0)
		fprintf(out, ", try %lld", e->attempt);
	if (e->delay_ms >= 0)
		fprintf(out, ", delay %gms", e->delay_ms);
	if (e->elapsed_ms >= 0)
		fprintf(out, ", %gms", e->elapsed_ms);
	if (e->failures >= 0)
		fprintf(out, ", %lld failures", e->failures);
	if (e->observe)
		fputs(" (observe mode: would have)", out);
	if (e->injected)
		fputs(" (injected)", out);
	fputs("\n", out);
	esc(out, e->rule ? e->rule : "-");
	fputs(" ", out);
	esc(out, e->dest);
	fputs(" at +", out);
	ms_text(out, e->us - pg->t0);
	if (e->ts) {
		fputs(" (", out);
		esc(out, e->ts);
		fputc(')', out);
	}
	fputs("\n", out);
	esc(out, pg->m->files[e->file]);
	fprintf(out, ":%lld</title>", e->line);
}

static void mark(FILE *out, struct page *pg, const struct bw_fx_ev *e, int row)
{
	double x = xof(pg, e->us), y = yof(row);
	const char *k = bw_fx_kind_name(e->kind);
	pg->marks[e->kind]++;
	switch (e->kind) {
	case BW_FX_FAIL:
	case BW_FX_INJECTED:
	case BW_FX_RECOVERED:
		fprintf(out, "<circle class=\"mark %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\">", k, x, y);
		tip(out, pg, e);
		fputs("</circle>\n", out);
		break;
	case BW_FX_RETRY:
	case BW_FX_THROTTLED:
		fprintf(out, "<path class=\"mark %s\" d=\"M%.1f %.1fl4 7h-8z\">", k, x, y - 4);
		tip(out, pg, e);
		fputs("</path>\n", out);
		break;
	default:
		/* gave_up, rejected, limited, timeout, failover, breaker, outage: a bar */
		fprintf(out, "<rect class=\"mark %s\" x=\"%.1f\" y=\"%.1f\" width=\"3\" "
			"height=\"14\">", k, x - 1.5, y - 7);
		tip(out, pg, e);
		fputs("</rect>\n", out);
	}
}

static void band(FILE *out, struct page *pg, const char *cls, int row, int64_t a, int64_t b,
		 const char *what, const struct bw_fx_ev *e)
{
	double x0 = xof(pg, a), x1 = xof(pg, b);
	if (x1 - x0 < 2)
		x1 = x0 + 2;
	pg->bands++;
	fprintf(out, "<rect class=\"band %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
		"height=\"%d\"><title>", cls, x0, yof(row) - ROW_H / 2.0 + 1, x1 - x0, ROW_H - 2);
	esc(out, what);
	fputs(": ", out);
	ms_text(out, b - a);
	if (e) {
		fputs(" (", out);
		esc(out, pg->m->files[e->file]);
		fprintf(out, ":%lld)", e->line);
	}
	fputs("</title></rect>\n", out);
}

/* Breaker positions over time: open (and half open) from the event that says so until
 * the next one of the same rule and destination, or the end of the timeline. */
static void breakers(FILE *out, struct page *pg)
{
	struct bw_fx *m = pg->m;
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		if (e->kind != BW_FX_BREAKER || !e->dest || !e->to ||
		    (strcmp(e->to, "open") != 0 && strcmp(e->to, "half_open") != 0))
			continue;
		int row = find_row(pg, e->proc, e->dest);
		if (row < 0)
			continue;
		int64_t end = pg->t1;
		for (size_t j = i + 1; j < m->n_evs; j++) {
			const struct bw_fx_ev *f = &m->evs[j];
			if (f->kind == BW_FX_BREAKER && f->proc == e->proc &&
			    strcmp(f->dest ? f->dest : "", e->dest) == 0 &&
			    strcmp(f->rule ? f->rule : "", e->rule ? e->rule : "") == 0) {
				end = f->us;
				break;
			}
		}
		band(out, pg, strcmp(e->to, "open") == 0 ? "open" : "half_open", row, e->us, end,
		     strcmp(e->to, "open") == 0 ? "breaker open" : "breaker half open", e);
	}
}

static void axis(FILE *out, const struct page *pg, double height)
{
	int64_t span_us = pg->t1 - pg->t0;
	for (int i = 0; i <= 5; i++) {
		double x = LABEL_W + PLOT_W * i / 5.0;
		fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\"/>"
			"<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">+", x,
			AXIS_H - 6, x, height, x, AXIS_H - 10,
			i == 0 ? "start" : i == 5 ? "end" : "middle");
		ms_text(out, span_us * i / 5);
		fputs("</text>\n", out);
	}
}

static void label(FILE *out, const struct page *pg, const struct row *r, int i)
{
	const struct bw_fx_proc *p = &pg->m->procs[r->proc];
	fprintf(out, "<text class=\"%s\" x=\"%d\" y=\"%.1f\">", r->is_proc ? "proc" : "dest",
		r->is_proc ? 4 : 16, yof(i) + 4);
	if (r->is_proc) {
		esc(out, p->prog);
		fprintf(out, " [%lld]", p->pid);
	} else {
		esc(out, r->dest);
	}
	fputs("<title>", out);
	esc(out, p->prog);
	fprintf(out, " pid %lld", p->pid);
	if (p->cmd_hash) {
		fputs(", command line ", out);
		esc(out, p->cmd_hash);
	}
	if (!r->is_proc) {
		fputs(": ", out);
		esc(out, r->dest);
		const char *sep = " (";
		for (int op = 0; op < 32; op++)
			if (r->ops & (1u << op)) {
				fputs(sep, out);
				esc(out, bw_op_name(op));
				sep = ", ";
			}
		if (r->ops)
			fputc(')', out);
	}
	fputs("</title></text>\n", out);
}

static void timeline(FILE *out, struct page *pg)
{
	struct bw_fx *m = pg->m;
	double height = AXIS_H + (double)pg->n * ROW_H + 4;
	/* no xmlns: inline in HTML the parser knows svg, and the page names no address at all */
	fprintf(out, "<svg id=\"timeline\" width=\"%d\" "
		"height=\"%.0f\" viewBox=\"0 0 %d %.0f\">\n", LABEL_W + PLOT_W + 20, height,
		LABEL_W + PLOT_W + 20, height);
	axis(out, pg, height);
	for (size_t i = 0; i < pg->n; i++) {
		const struct row *r = &pg->rows[i];
		fprintf(out, "<g class=\"row%s\">", r->is_proc ? " procrow" : "");
		label(out, pg, r, (int)i);
		if (r->is_proc) {
			const struct bw_fx_proc *p = &m->procs[r->proc];
			pg->bars++;
			fprintf(out, "<rect class=\"life\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
				"height=\"4\"><title>", xof(pg, p->start_us), yof((int)i) - 2,
				xof(pg, p->end_us) - xof(pg, p->start_us) + 1);
			esc(out, p->prog);
			fprintf(out, " pid %lld: first to last event, ", p->pid);
			ms_text(out, p->end_us - p->start_us);
			fputs("</title></rect>", out);
		}
		fputs("</g>\n", out);
	}
	/* what observe mode measured: when each destination was called, how often */
	for (size_t i = 0; i < m->n_calls; i++) {
		const struct bw_fx_calls *c = &m->calls[i];
		int row = find_row(pg, c->proc, c->dest);
		if (row < 0 || !c->first_us)
			continue;
		double x0 = xof(pg, c->first_us), x1 = xof(pg, c->last_us);
		pg->bars++;
		fprintf(out, "<rect class=\"calls\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"6\"><title>", x0, yof(row) - 3, x1 - x0 < 2 ? 2 : x1 - x0);
		esc(out, c->op);
		fprintf(out, ": %lld call%s, %lld failed, busiest second %lld, slowest %gms",
			c->calls, c->calls == 1 ? "" : "s", c->failures, c->peak_1s, c->max_ms);
		fputs(" (", out);
		esc(out, c->rule ? c->rule : "-");
		fputs(")</title></rect>\n", out);
	}
	breakers(out, pg);
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		if (e->kind == BW_FX_OUTAGE && e->dest && e->elapsed_ms > 0) {
			int row = find_row(pg, e->proc, e->dest);
			if (row >= 0)
				band(out, pg, "outage", row, e->us - (int64_t)(e->elapsed_ms * 1000),
				     e->us, "failing until it answered again", e);
		}
	}
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		int row = e->dest ? find_row(pg, e->proc, e->dest) : -1;
		if (row >= 0 && e->kind != BW_FX_OTHER)
			mark(out, pg, e, row);
	}
	fputs("</svg>\n", out);
}

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}"
	"h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}"
	".meta{color:#555}.tl{overflow-x:auto;border:1px solid #ddd;padding:4px}"
	"pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12.5px}"
	"svg text{font:12px monospace;fill:#222}svg text.proc{font-weight:bold}"
	"svg text.tick{fill:#777;font-size:11px}.grid{stroke:#eee}"
	".life{fill:#bbb}.calls{fill:#9ec5e8}"
	".fail{fill:#d62728}.injected{fill:#1f5fbf}.recovered{fill:#2ca02c}"
	".retry{fill:#ff7f0e}.throttled{fill:#9467bd}.limited{fill:#6b3fa0}"
	".gave_up{fill:#7f0000}.rejected{fill:#8c564b}.timeout{fill:#e377c2}"
	".failover{fill:#17becf}.breaker{fill:#444}.outage{fill:#999}"
	".band.open{fill:#d62728;opacity:.18}.band.half_open{fill:#ffbf00;opacity:.25}"
	".band.outage{fill:#888;opacity:.18}"
	".legend span{display:inline-block;margin-right:1em}"
	".legend i{display:inline-block;width:10px;height:10px;margin-right:4px;"
	"vertical-align:middle}";

static const struct {
	const char *cls, *text;
} legend[] = {
	{ "calls", "calls (observe mode)" }, { "fail", "failure" },
	{ "retry", "retry" }, { "recovered", "recovered" }, { "gave_up", "gave up" },
	{ "injected", "injected" }, { "rejected", "rejected" }, { "throttled", "throttled" },
	{ "limited", "limited" }, { "timeout", "timeout" }, { "failover", "failover" },
	{ "band open", "breaker open" }, { "band half_open", "breaker half open" },
	{ "band outage", "failing until it answered" },
};

/* Counts what the page holds, into #drawn: the test reads them back from the DOM. */
static const char script[] =
	"(function(){var s=document.getElementById('timeline'),d=document.getElementById('drawn');"
	"if(!s||!d)return;var q=function(c){return s.querySelectorAll(c).length;};"
	"var n={rows:q('g.row:not(.procrow)'),processes:q('g.procrow'),marks:q('.mark'),"
	"failures:q('.mark.fail'),retries:q('.mark.retry'),breaker_bands:q('.band.open'),"
	"throttled:q('.mark.throttled'),calls:q('rect.calls')};"
	"for(var k in n)d.setAttribute('data-'+k,n[k]);"
	"d.textContent='drawn: '+n.rows+' rows of '+n.processes+' processes, '+n.marks+"
	"' marks ('+n.failures+' failures, '+n.retries+' retries), '+n.breaker_bands+"
	"' open breakers, '+n.calls+' call spans';})();";

int bw_report_print_html(struct bw_report *r, struct bw_fx *m, FILE *out)
{
	struct page pg = { .m = m };
	bw_fx_link(m);
	layout(&pg);

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<title>bulwark report</title>\n<style>", out);
	fputs(style, out);
	fputs("</style>\n</head>\n<body>\n<h1>bulwark report</h1>\n<p class=\"meta\">", out);
	fprintf(out, "%lld events from %zu processes in ", r->events, r->n_pids);
	for (size_t i = 0; i < m->n_files; i++) {
		fputs(i ? ", " : "", out);
		esc(out, m->files[i]);
	}
	if (r->have_ts) {
		fputs("; ", out);
		esc(out, r->first_ts);
		fputs(" .. ", out);
		esc(out, r->last_ts);
	}
	fputs("</p>\n<h2>Timeline</h2>\n<p class=\"legend\">", out);
	for (size_t i = 0; i < sizeof legend / sizeof legend[0]; i++) {
		fputs("<span><svg width=\"10\" height=\"10\"><rect class=\"", out);
		fputs(legend[i].cls, out);
		fputs("\" width=\"10\" height=\"10\"/></svg> ", out);
		fputs(legend[i].text, out);
		fputs("</span>", out);
	}
	fputs("</p>\n<p>One row per process that called something, then one per destination it "
	      "called; hover over a mark for its event and log line.</p>\n", out);
	if (!pg.n)
		fputs("<p>No call events to draw.</p>\n", out);
	fputs("<div class=\"tl\">\n", out);
	timeline(out, &pg);
	fputs("</div>\n", out);
	if (pg.dropped)
		fprintf(out, "<p>%zu more rows were left out (at most %d are drawn).</p>\n",
			pg.dropped, MAX_ROWS);
	fputs("<p id=\"drawn\"></p>\n<h2>Summary</h2>\n<pre>", out);
	/* the text report, whole */
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int wide = r->wide;
	r->wide = 1;
	if (!mem || bw_report_print_table(r, mem) != 0 || fclose(mem) != 0) {
		r->wide = wide;
		free(text);
		return -1;
	}
	r->wide = wide;
	esc(out, text);
	free(text);
	fputs("</pre>\n<script>", out);
	fputs(script, out);
	fputs("</script>\n</body>\n</html>\n", out);
	return 0;
}
