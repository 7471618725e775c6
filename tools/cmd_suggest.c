/* `bulwark suggest`: a policy sized from what an observe-mode run measured (bulwark(1),
 * SUGGEST). Per destination that was connected to:
 *   - timeouts from the calls events' histograms: connect from connect attempts, recv
 *     from the wait for each reply, both from the 99th percentile and the slowest call;
 *   - a retry whose waits add up to twice the longest outage the log saw (a destination
 *     failing until it answered again: outage events, and runs of fail events with
 *     consecutive attempt numbers);
 *   - where outages had two or more failures in a row, a breaker that opens only after
 *     more failures in a row than the retry makes (an outage longer than those seen):
 *     an open breaker refuses the retry's next attempt, and would undo it;
 *   - a rate limit where the connects came in bursts (a busiest second far above the
 *     average one).
 * Every value is followed by a comment with the figures it came from. The output is a
 * policy `bulwark check` loads. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "fx.h"
#include "ops.h"
#include "report.h"

#define PCT 0.99                 /* the percentile timeouts start from */
#define FEW 20                   /* fewer samples than this: a first guess, said so */
#define CONNECT_FLOOR_US 200000  /* a connect across a host under load */
#define RECV_FLOOR_US 1000000
#define TIMEOUT_CAP_US 60000000
#define DEADLINE_CAP_US 60000000
#define BURST_MIN 10             /* calls in a second before a burst is a burst */
#define BURST_RATIO 4            /* the busiest second over the average one */

struct hist {
	long long n[BW_FX_BUCKETS], total;
	double le[BW_FX_BUCKETS - 1];
	double max_ms;
	int have_le;
};

struct streak {
	int proc;
	long long len;
	int64_t first_us, last_us;
	double ms;                   /* first failure to the first success after, -1 unknown */
	const struct bw_fx_ev *first;
};

struct dest {
	const char *name;
	struct hist conn, reply;
	long long conn_calls, conn_fails;
	long long peak, peak_calls, peak_active;   /* the burstiest process's figures */
	int peak_proc;
	struct streak *s;
	size_t ns, caps;
	const char *errs[8];
	int n_errs;
};

static void *xrealloc(void *p, size_t n, size_t size)
{
	void *q = realloc(p, n * size != 0 ? n * size : 1);
	if (!q) {
		fputs("bulwark suggest: out of memory\n", stderr);
		exit(1);
	}
	return q;
}

/* A comment at indent, wrapped at 88 columns. */
static void say(FILE *out, int indent, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(FILE *out, int indent, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	const char *p = text;
	size_t room = 88 - (size_t)indent - 2;
	while (*p) {
		size_t n = strlen(p);
		if (n > room) {
			n = room;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = room;
		}
		fprintf(out, "%*s# ", indent, "");
		for (size_t i = 0; i < n; i++)
			fputc((unsigned char)p[i] < 0x20 ? '?' : p[i], out);
		fputc('\n', out);
		p += n;
		while (*p == ' ')
			p++;
	}
}

static struct dest *dest_of(struct dest **v, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].name, name) == 0)
			return &(*v)[i];
	*v = xrealloc(*v, *n + 1, sizeof **v);
	struct dest *d = &(*v)[(*n)++];
	memset(d, 0, sizeof *d);
	d->name = name;
	d->peak_proc = -1;
	return d;
}

static void hist_add(struct hist *h, const struct bw_fx_calls *c)
{
	if (!c->n_le)
		return;
	for (int b = 0; b < BW_FX_BUCKETS; b++) {
		h->n[b] += c->hist[b];
		h->total += c->hist[b];
	}
	for (int b = 0; b < BW_FX_BUCKETS - 1; b++)
		h->le[b] = c->le_ms[b];
	h->have_le = 1;
	if (c->max_ms > h->max_ms)
		h->max_ms = c->max_ms;
}

/* The bound of the bucket that holds the q-th quantile (nearest rank), in ms: "at most
 * this". The last bucket has no bound: the slowest call stands for it. */
static double quantile(const struct hist *h, double q)
{
	long long rank = (long long)ceil(q * (double)h->total), seen = 0;
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < BW_FX_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= rank)
			return b < BW_FX_BUCKETS - 1 ? h->le[b] : h->max_ms;
	}
	return h->max_ms;
}

static void errs_add(struct dest *d, const char *err)
{
	for (int i = 0; i < d->n_errs; i++)
		if (strcmp(d->errs[i], err) == 0)
			return;
	if (d->n_errs < 8)
		d->errs[d->n_errs++] = err;
}

/* Failure streaks of connects to each destination, per process: fail events whose
 * attempt numbers follow each other, ended by the outage event that says the
 * destination answered again (its elapsed_ms is the streak's length in time). */
static void streaks(struct bw_fx *m, struct dest **v, size_t *nv)
{
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		if (!e->dest || !e->op || strcmp(e->op, "connect") != 0)
			continue;
		struct dest *d = dest_of(v, nv, e->dest);
		if (e->kind == BW_FX_OUTAGE) {
			/* the latest open streak of that process */
			for (size_t k = d->ns; k-- > 0;)
				if (d->s[k].proc == e->proc) {
					if (d->s[k].ms < 0 && e->elapsed_ms >= 0)
						d->s[k].ms = e->elapsed_ms;
					break;
				}
			continue;
		}
		if (e->kind != BW_FX_FAIL || e->injected)
			continue;
		d->conn_fails++;
		if (e->err)
			errs_add(d, e->err);
		struct streak *last = NULL;
		for (size_t k = d->ns; k-- > 0;)
			if (d->s[k].proc == e->proc) {
				last = &d->s[k];
				break;
			}
		if (last && last->ms < 0 && e->n && last->first->n + last->len == e->n) {
			last->len++;
			last->last_us = e->us;
			continue;
		}
		if (d->ns == d->caps) {
			d->caps = d->caps ? d->caps * 2 : 8;
			d->s = xrealloc(d->s, d->caps, sizeof *d->s);
		}
		d->s[d->ns++] = (struct streak){ e->proc, 1, e->us, e->us, -1, e };
	}
}

static double streak_ms(const struct streak *s)
{
	return s->ms >= 0 ? s->ms : (double)(s->last_us - s->first_us) / 1000.0;
}

static void dur(char *buf, size_t cap, int64_t us)
{
	bw_fx_nice_dur(buf, cap, us < 1000 ? 1000 : us);
}

static void fig(char *buf, size_t cap, double ms)
{
	if (ms >= 1000)
		snprintf(buf, cap, "%.3gs", ms / 1000);
	else
		snprintf(buf, cap, "%.3gms", ms);
}

/* A timeout: 4 x the percentile or 2 x the slowest call, whichever is more, rounded up,
 * at least floor. */
static void timeout_line(FILE *out, const char *key, const char *what, const struct hist *h,
			 int64_t floor_us)
{
	double p = quantile(h, PCT);
	double want = 4 * p > 2 * h->max_ms ? 4 * p : 2 * h->max_ms;
	int64_t us = (int64_t)(want * 1000);
	if (us < floor_us)
		us = floor_us;
	if (us > TIMEOUT_CAP_US)
		us = TIMEOUT_CAP_US;
	char v[32], a[32], b[32], f[32];
	dur(v, sizeof v, us);
	fig(a, sizeof a, p);
	fig(b, sizeof b, h->max_ms);
	fig(f, sizeof f, (double)floor_us / 1000);
	fprintf(out, "      %s: %s\n", key, v);
	say(out, 6, "p99 of %lld %s: at most %s (its histogram bucket), the slowest %s; "
	    "4 x p99 or 2 x the slowest, at least %s, rounded up%s", h->total, what, a, b, f,
	    h->total < FEW ? "; few calls: a first guess" : "");
}

static void rule_name(FILE *out, const char *dest, const char *suffix)
{
	char b[BW_NAME_MAX];
	size_t k = 0;
	const char *lead = "dest-";
	for (const char *p = lead; *p; p++)
		b[k++] = *p;
	size_t room = sizeof b - 1 - strlen(suffix);
	for (const unsigned char *p = (const unsigned char *)dest; *p && k < room; p++)
		b[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				(*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ? *p : '-');
	b[k] = '\0';
	fprintf(out, "%s%s", b, suffix);
}

/* The retry; returns its attempts. */
static int retry_block(FILE *out, struct bw_fx *m, const struct dest *d)
{
	const struct streak *lo = NULL;
	int unended = 0;
	for (size_t i = 0; i < d->ns; i++) {
		if (!lo || streak_ms(&d->s[i]) > streak_ms(lo))
			lo = &d->s[i];
		unended += d->s[i].ms < 0;
	}
	double dmax = streak_ms(lo);
	int64_t cover = (int64_t)(2 * dmax * 1000);
	if (cover < 20000)
		cover = 20000;      /* at least 20 ms: a refusal that ends at once still waits */
	if (cover > DEADLINE_CAP_US)
		cover = DEADLINE_CAP_US;
	int64_t base = bw_fx_nice_up_us(cover / 8 < 10000 ? 10000 : cover / 8);
	int64_t max = bw_fx_nice_up_us(cover / 2 > base ? cover / 2 : base);
	/* equal jitter: each wait is at least half its cap. And one attempt more than the
	 * most failures in a row seen: a retry meets them one after the other */
	long long most_in_row = 0;
	for (size_t i = 0; i < d->ns; i++)
		if (d->s[i].len > most_in_row)
			most_in_row = d->s[i].len;
	int attempts = 1;
	int64_t least = 0, most = 0, cap = base;
	while ((least < cover || attempts <= most_in_row) && attempts < 100) {
		least += cap / 2;
		most += cap;
		attempts++;
		cap = cap * 2 > max ? max : cap * 2;
	}
	int64_t deadline = bw_fx_nice_up_us(most + cover);
	if (deadline > DEADLINE_CAP_US)
		deadline = DEADLINE_CAP_US;
	char b[32], mx[32], dl[32], w[32], l[32], c[32];
	dur(b, sizeof b, base);
	dur(mx, sizeof mx, max);
	dur(dl, sizeof dl, deadline);
	fig(w, sizeof w, dmax);
	fig(l, sizeof l, (double)least / 1000);
	fig(c, sizeof c, (double)cover / 1000);
	const struct bw_fx_proc *p = &m->procs[lo->proc];
	fputs("    retry:\n", out);
	say(out, 6, "the longest outage seen: %s, %lld connect%s in a row failed (%s pid %lld, "
	    "%s)%s. With these, the waits add up to at least %s (equal jitter: each at least "
	    "half its cap): twice that outage, and at least 20ms; and there is one attempt "
	    "more than the most failures in a row seen (%lld)", w, lo->len,
	    lo->len == 1 ? "" : "s", p->prog, p->pid, lo->first->ts ? lo->first->ts : "?",
	    lo->ms < 0 ? "; it had not answered again when the process ended" : "", l,
	    most_in_row);
	(void)c;
	fprintf(out, "      attempts: %d\n", attempts);
	fputs("      on: [", out);
	int n = 0;
	for (int i = 0; i < d->n_errs; i++) {
		const char *e = d->errs[i];
		/* what a connect can be retried on; anything else the log said is left out */
		if (strcmp(e, "ECONNREFUSED") && strcmp(e, "ETIMEDOUT") && strcmp(e, "ECONNRESET") &&
		    strcmp(e, "EHOSTUNREACH") && strcmp(e, "ENETUNREACH") && strcmp(e, "ECONNABORTED") &&
		    strcmp(e, "ENOENT") && strcmp(e, "EAGAIN"))
			continue;
		fprintf(out, "%s%s", n++ ? ", " : "", e);
	}
	if (!n)
		fputs("ECONNREFUSED, ETIMEDOUT", out);
	fprintf(out, "]    # the errors seen\n");
	fprintf(out, "      backoff: { base: %s, max: %s, jitter: equal }\n", b, mx);
	fprintf(out, "      deadline: %s\n", dl);
	say(out, 6, "the most the waits can add up to, and the longest outage once more, "
	    "rounded up");
	if (unended)
		say(out, 6, "%d of the %zu outages had not ended when their process did: their "
		    "length is from the first failure to the last", unended, d->ns);
	return attempts;
}

static int ms_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* A breaker that never stops the retry above riding over an outage like those seen: an
 * open breaker refuses the retry's next attempt, so it trips only after more failures
 * in a row than the retry makes, which only an outage longer than any seen brings. */
static void breaker_block(FILE *out, const struct dest *d, int attempts)
{
	long long shortest = 0, longest_blip = 0, outages = 0;
	double *ms = xrealloc(NULL, d->ns ? d->ns : 1, sizeof *ms);
	for (size_t i = 0; i < d->ns; i++) {
		const struct streak *s = &d->s[i];
		if (s->len >= 2) {
			if (!shortest || s->len < shortest)
				shortest = s->len;
			ms[outages++] = streak_ms(s);
		} else if (s->len > longest_blip) {
			longest_blip = s->len;
		}
	}
	if (!outages) {
		fputs("    # no breaker: no two connects in a row failed, so one would only have "
		      "opened on a\n    # single refusal, which the retry above rides over\n", out);
		free(ms);
		return;
	}
	qsort(ms, (size_t)outages, sizeof *ms, ms_cmp);
	double median = ms[outages / 2];
	int64_t open_us = (int64_t)(median * 1000);
	if (open_us < 100000)
		open_us = 100000;
	char o[32], f[32];
	dur(o, sizeof o, open_us);
	fig(f, sizeof f, median);
	long long longest = 0;
	for (size_t i = 0; i < d->ns; i++)
		if (d->s[i].len > longest)
			longest = d->s[i].len;
	long long trip = attempts + 1 > longest + 1 ? attempts + 1 : longest + 1;
	fputs("    breaker:\n", out);
	fprintf(out, "      trip: { consecutive: %lld }\n", trip);
	say(out, 6, "one more than the retry's %d attempts: it opens when an outage outlasts "
	    "the retry, longer than the %lld outage%s seen (%lld to %lld failures in a row), "
	    "which the retry rides over; an open breaker would refuse the retry's next attempt%s",
	    attempts, outages, outages == 1 ? "" : "s", shortest, longest,
	    longest_blip ? "; the other failures came one at a time" : "");
	fprintf(out, "      open_for: %s\n", o);
	say(out, 6, "the median outage lasted %s; at least 100ms, rounded up", f);
	free(ms);
}

static void limit_block(FILE *out, struct bw_fx *m, const struct dest *d)
{
	if (d->peak_proc < 0 || d->peak_active <= 0)
		return;
	double mean = (double)d->peak_calls / (double)d->peak_active;
	if (d->peak < BURST_MIN || (double)d->peak < BURST_RATIO * mean)
		return;
	long long rate = (long long)ceil(2 * mean);
	if (rate < 1)
		rate = 1;
	int64_t wait = (int64_t)((double)(d->peak - rate) / (double)rate * 1e6);
	if (wait < 100000)
		wait = 100000;
	if (wait > 30000000)
		wait = 30000000;
	char w[32];
	dur(w, sizeof w, wait);
	const struct bw_fx_proc *p = &m->procs[d->peak_proc];
	fputs("    rate_limit:\n", out);
	fprintf(out, "      rate: %lld/s\n      burst: %lld\n", rate, rate);
	say(out, 6, "%s pid %lld made %lld connects in its busiest second, %.1f a second on "
	    "average over the %lld seconds it made any: twice the average", p->prog, p->pid,
	    d->peak, mean, d->peak_active);
	fprintf(out, "      on_limit: wait\n      max_wait: %s\n", w);
	say(out, 6, "the busiest second's connects, spread out at that rate");
}

static int suggest(struct bw_fx *m, const char *const *files, int n_files, FILE *out)
{
	struct dest *v = NULL;
	size_t nv = 0;
	long long measured = 0;
	bw_fx_link(m);
	for (size_t i = 0; i < m->n_calls; i++) {
		const struct bw_fx_calls *c = &m->calls[i];
		if (strcmp(c->op, "connect") != 0 && strcmp(c->op, "recv") != 0)
			continue;
		struct dest *d = dest_of(&v, &nv, c->dest);
		measured += c->calls;
		if (strcmp(c->op, "recv") == 0) {
			hist_add(&d->reply, c);
			continue;
		}
		hist_add(&d->conn, c);
		d->conn_calls += c->calls;
		if (c->peak_1s > d->peak) {
			d->peak = c->peak_1s;
			d->peak_calls = c->calls;
			d->peak_active = c->active_s;
			d->peak_proc = c->proc;
		}
	}
	streaks(m, &v, &nv);

	fputs("# bulwark suggest: a policy sized from what an observe-mode run measured in ", out);
	for (int i = 0; i < n_files; i++) {
		fputs(i ? ", " : "", out);
		bw_fx_comment_text(out, files[i]);
	}
	fprintf(out, "\n# (%zu processes, %lld calls measured). Each value says which figure it "
		"came from. Check it\n# with `bulwark check`, try it against the failures seen with "
		"`bulwark report --replay\n# -c THIS_FILE LOG`.\n", m->n_procs, measured);
	fputs("version: 1\n", out);
	int rules = 0;
	for (size_t i = 0; i < nv; i++) {
		struct dest *d = &v[i];
		if (!d->conn.total && !d->conn_fails)
			continue;    /* a peer that connected to us, or a host name: not ours */
		fputs(rules++ ? "\n" : "rules:\n", out);
		fputs("  - name: ", out);
		rule_name(out, d->name, "");
		fputs("\n    match: { ops: [connect], dest: [", out);
		bw_fx_yaml_str(out, d->name);
		fprintf(out, "] }    # %lld connects, %lld failed\n", d->conn_calls, d->conn_fails);
		if (d->conn.total) {
			fputs("    timeout:\n", out);
			timeout_line(out, "connect", "connects", &d->conn, CONNECT_FLOOR_US);
		}
		if (d->ns)
			breaker_block(out, d, retry_block(out, m, d));
		else
			fputs("    # no retry: no connect to it failed, so there is no outage to "
			      "size one on\n    retry: off\n", out);
		limit_block(out, m, d);
		if (d->reply.total) {
			fputs("\n  - name: ", out);
			rule_name(out, d->name, "-io");
			fputs("\n    match: { ops: [send, recv], dest: [", out);
			bw_fx_yaml_str(out, d->name);
			fputs("] }\n    timeout:\n", out);
			timeout_line(out, "recv", "replies (from a request's send to the first byte "
				     "back)", &d->reply, RECV_FLOOR_US);
		}
	}
	if (!rules)
		fputs("# no connect was measured: run the program under `bulwark run --observe -o "
		      "file:LOG`,\n# which logs the calls events this reads\nrules: []\n", out);
	for (size_t i = 0; i < nv; i++)
		free(v[i].s);
	free(v);
	return rules ? 0 : 1;
}

static const struct option options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int bw_cmd_suggest(int argc, char **argv)
{
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("suggest", argv, c); return BW_EXIT_USAGE;
		}
	}
	struct bw_report r;
	struct bw_fx m;
	bw_report_init(&r);
	bw_fx_init(&m);
	r.fx = &m;
	int status = 0;
	const char *std_in = "-";
	const char *const *files = (const char *const *)argv + optind;
	int n_files = argc - optind;
	if (!n_files) {
		files = &std_in;
		n_files = 1;
	}
	for (int i = 0; i < n_files; i++) {
		FILE *f = strcmp(files[i], "-") == 0 ? stdin : fopen(files[i], "r");
		if (!f) {
			fprintf(stderr, "bulwark suggest: %s: %s\n", files[i], strerror(errno));
			status = 1;
			continue;
		}
		if (bw_report_read(&r, f, f == stdin ? "<stdin>" : files[i]) != 0)
			status = 1;
		if (f != stdin)
			fclose(f);
	}
	int rc = suggest(&m, files, n_files, stdout);
	if (rc)
		fputs("bulwark suggest: no connect was measured (calls events come from "
		      "observe mode)\n", stderr);
	bw_report_free(&r);
	bw_fx_free(&m);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("bulwark suggest: stdout");
		return 1;
	}
	return status ? status : rc;
}
