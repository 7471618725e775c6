/* libFuzzer target for the policy loader (make fuzz).
 *
 * The bytes are a policy file. Whatever they are, loading must not crash, leak or
 * overrun (ASan, UBSan and LeakSanitizer watch that), every diagnostic must be well
 * formed, and a policy that loads must survive its own dump: the effective YAML that
 * bw_config_dump writes loads again without a diagnostic, to the same policy field by
 * field (but for the lines rules start on), and dumps identically. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME "fuzz.yaml"

static void fail(const char *what, const char *input, size_t len, const char *dump1,
		 const char *dump2, const struct bw_diags *dg)
{
	fprintf(stderr, "fuzz_config: %s\n", what);
	fprintf(stderr, "---- input (%zu bytes) ----\n%.*s\n", len, (int)len, input);
	if (dump1)
		fprintf(stderr, "---- first dump ----\n%s", dump1);
	if (dump2)
		fprintf(stderr, "---- second dump ----\n%s", dump2);
	if (dg) {
		int n = dg->n < BW_MAX_DIAGS ? dg->n : BW_MAX_DIAGS;
		char line[600];
		for (int i = 0; i < n; i++) {
			bw_diag_format(&dg->d[i], line, sizeof line);
			fprintf(stderr, "diag: %s\n", line);
		}
	}
	abort();
}

/* Every kept diagnostic: NUL-terminated fields, line and col >= 0 (1-based, or both 0 when
 * unknown), a message, and bw_diag_format always terminating what it writes. */
static void check_diags(const struct bw_diags *dg, const char *input, size_t len)
{
	int n = dg->n < BW_MAX_DIAGS ? dg->n : BW_MAX_DIAGS;
	if (dg->n < 0)
		fail("negative diagnostic count", input, len, NULL, NULL, NULL);
	for (int i = 0; i < n; i++) {
		const struct bw_diag *d = &dg->d[i];
		if (!memchr(d->file, '\0', sizeof d->file) || !memchr(d->msg, '\0', sizeof d->msg))
			fail("diagnostic not NUL-terminated", input, len, NULL, NULL, NULL);
		if (d->line < 0 || d->col < 0)
			fail("diagnostic with a negative line or col", input, len, NULL, NULL, dg);
		if (d->line > 0 && d->col == 0)
			fail("diagnostic with a line but no col", input, len, NULL, NULL, dg);
		if (d->line == 0 && d->col != 0)
			fail("diagnostic with a col but no line", input, len, NULL, NULL, dg);
		if (!d->msg[0])
			fail("diagnostic with an empty message", input, len, NULL, NULL, dg);
		if (strcmp(d->file, NAME) != 0)
			fail("diagnostic names another file", input, len, NULL, NULL, dg);
		/* formatted into buffers of every small size, then a roomy one */
		char buf[700];
		for (size_t cap = 1; cap <= 16; cap++) {
			memset(buf, 0x5A, sizeof buf);
			bw_diag_format(d, buf, cap);
			if (!memchr(buf, '\0', cap) || buf[cap] != 0x5A)
				fail("bw_diag_format: unterminated or past cap", input, len, NULL, NULL, dg);
		}
		bw_diag_format(d, buf, sizeof buf);
		if (!memchr(buf, '\0', sizeof buf) || strncmp(buf, NAME ":", strlen(NAME ":")) != 0)
			fail("bw_diag_format: bad line", input, len, NULL, NULL, dg);
	}
}

/* The effective policy as YAML, in a malloc'ed NUL-terminated string. */
static char *dump(const struct bw_config *cfg, size_t *n)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, n);
	if (!f)
		abort();
	bw_config_dump(cfg, f);
	if (fclose(f) != 0)
		abort();
	if (strlen(text) != *n)
		fail("dump contains a NUL byte", text, *n, NULL, NULL, NULL);
	return text;
}

/* ---- the dump loads to the same policy: field by field, but for where rules start ---- */

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int strs_eq(char *const *a, int na, char *const *b, int nb)
{
	if (na != nb)
		return 0;
	for (int i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int dests_eq(const struct bw_dest *a, int na, const struct bw_dest *b, int nb)
{
	if (na != nb)
		return 0;
	for (int i = 0; i < na; i++)
		if (a[i].kind != b[i].kind || a[i].family != b[i].family ||
		    memcmp(a[i].addr, b[i].addr, sizeof a[i].addr) != 0 || a[i].prefix != b[i].prefix ||
		    a[i].port != b[i].port || !str_eq(a[i].pattern, b[i].pattern) ||
		    !str_eq(a[i].text, b[i].text))
			return 0;
	return 1;
}

/* Which field differs, or NULL. */
static const char *rule_diff(const struct bw_rule *a, const struct bw_rule *b)
{
	const struct bw_retry *ra = &a->retry, *rb = &b->retry;
	const struct bw_breaker *ba = &a->breaker, *bb = &b->breaker;
	const struct bw_rate_limit *la = &a->rate_limit, *lb = &b->rate_limit;
	if (strcmp(a->name, b->name) != 0)
		return "name";
	if (a->match.ops != b->match.ops ||
	    !dests_eq(a->match.dest, a->match.n_dest, b->match.dest, b->match.n_dest) ||
	    !strs_eq(a->match.host, a->match.n_host, b->match.host, b->match.n_host) ||
	    !strs_eq(a->match.db, a->match.n_db, b->match.db, b->match.n_db) ||
	    !strs_eq(a->match.prog, a->match.n_prog, b->match.prog, b->match.n_prog))
		return "match";
	if (a->has_retry != b->has_retry || ra->attempts != rb->attempts || ra->n_on != rb->n_on ||
	    memcmp(ra->on, rb->on, sizeof ra->on) != 0 || ra->base != rb->base ||
	    ra->max != rb->max || ra->multiplier != rb->multiplier || ra->jitter != rb->jitter ||
	    ra->deadline != rb->deadline || ra->budget_ratio != rb->budget_ratio ||
	    ra->budget_min_per_sec != rb->budget_min_per_sec)
		return "retry";
	if (memcmp(&a->timeout, &b->timeout, sizeof a->timeout) != 0)
		return "timeout";
	if (ba->enabled != bb->enabled || ba->scope != bb->scope ||
	    ba->consecutive != bb->consecutive || ba->rate != bb->rate || ba->window != bb->window ||
	    ba->min_calls != bb->min_calls || ba->open_for != bb->open_for ||
	    ba->open_for_max != bb->open_for_max || ba->half_open_probes != bb->half_open_probes ||
	    ba->err != bb->err)
		return "breaker";
	if (la->enabled != lb->enabled || la->scope != lb->scope || la->rate != lb->rate ||
	    la->bytes != lb->bytes || la->burst != lb->burst || la->on_limit != lb->on_limit ||
	    la->max_wait != lb->max_wait || la->err != lb->err)
		return "rate_limit";
	if (!dests_eq(a->fallback, a->n_fallback, b->fallback, b->n_fallback))
		return "fallback";
	if (a->n_inject != b->n_inject)
		return "inject";
	for (int i = 0; i < a->n_inject; i++) {
		const struct bw_inject *x = &a->inject[i], *y = &b->inject[i];
		if (x->ops != y->ops || x->err != y->err || x->probability != y->probability ||
		    x->after != y->after || x->count != y->count || x->delay != y->delay ||
		    x->partial != y->partial || x->eof != y->eof || x->reset != y->reset)
			return "inject";
	}
	if (a->nonblocking != b->nonblocking || a->max_keys != b->max_keys)
		return "nonblocking or max_keys";
	if (!strs_eq(a->idempotent, a->n_idempotent, b->idempotent, b->n_idempotent))
		return "idempotent";
	return NULL;
}

static const char *config_diff(const struct bw_config *a, const struct bw_config *b)
{
	if (a->version != b->version || a->mode != b->mode ||
	    a->on_config_error != b->on_config_error || a->seed != b->seed)
		return "version, mode, on_config_error or seed";
	if (a->log.sink != b->log.sink || !str_eq(a->log.path, b->log.path) ||
	    a->log.level != b->log.level || a->log.facility != b->log.facility ||
	    a->log.summary != b->log.summary)
		return "log";
	if (a->state.share != b->state.share || !str_eq(a->state.dir, b->state.dir))
		return "state";
	if (a->ops != b->ops || a->n_rules != b->n_rules)
		return "ops or the number of rules";
	for (int i = 0; i < a->n_rules; i++) {
		const char *d = rule_diff(&a->rules[i], &b->rules[i]);
		if (d)
			return d;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *input = (const char *)data;
	struct bw_diags dg;
	memset(&dg, 0, sizeof dg);

	struct bw_config *cfg = bw_config_load_string(NAME, input, size, &dg);
	check_diags(&dg, input, size);
	if (!cfg) {
		if (dg.n < 1)
			fail("load failed without a diagnostic", input, size, NULL, NULL, NULL);
		/* the same without a diagnostics array: must not crash or leak */
		bw_config_load_string(NAME, input, size, NULL);
		return 0;
	}
	if (dg.n != 0)
		fail("loaded with diagnostics", input, size, NULL, NULL, &dg);

	size_t n1, n2;
	char *d1 = dump(cfg, &n1);
	struct bw_diags dg2;
	memset(&dg2, 0, sizeof dg2);
	struct bw_config *again = bw_config_load_string(NAME, d1, n1, &dg2);
	check_diags(&dg2, d1, n1);
	if (!again)
		fail("the dump does not load", input, size, d1, NULL, &dg2);
	if (dg2.n != 0)
		fail("the dump loads with diagnostics", input, size, d1, NULL, &dg2);
	char *d2 = dump(again, &n2);
	if (n1 != n2 || memcmp(d1, d2, n1) != 0)
		fail("the dump of the dump differs", input, size, d1, d2, NULL);
	const char *diff = config_diff(cfg, again);
	if (diff) {
		char what[96];
		snprintf(what, sizeof what, "the dump loads to another policy: %s differs", diff);
		fail(what, input, size, d1, d2, NULL);
	}

	/* one rule alone, as `bulwark explain` prints it */
	for (int i = 0; i < cfg->n_rules; i++) {
		char *text = NULL;
		size_t n;
		FILE *f = open_memstream(&text, &n);
		if (!f)
			abort();
		bw_rule_dump(&cfg->rules[i], f, 4);
		fclose(f);
		if (n == 0 || text[n - 1] != '\n')
			fail("bw_rule_dump: not whole lines", input, size, d1, text, NULL);
		free(text);
	}

	free(d1);
	free(d2);
	bw_config_free(again);
	bw_config_free(cfg);
	return 0;
}
