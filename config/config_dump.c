/* The effective policy as YAML that loads back to the same policy: every field explicit,
 * presets expanded, defaults merged into the rules. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "config_int.h"
#include "errnames.h"
#include "units.h"
#include "redis_url.h"
#include "vocab.h"

struct out {
	FILE *f;
	int indent;          /* spaces before depth 0 */
	const char *lead;    /* printed instead of the indent on the next line ("  - ") */
};

static void indent(struct out *o, int depth)
{
	if (o->lead) {
		fputs(o->lead, o->f);
		o->lead = NULL;
	} else {
		fprintf(o->f, "%*s", o->indent + 2 * depth, "");
	}
}

static void kv(struct out *o, int depth, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void kv(struct out *o, int depth, const char *key, const char *fmt, ...)
{
	va_list ap;
	indent(o, depth);
	fprintf(o->f, "%s: ", key);
	va_start(ap, fmt);
	vfprintf(o->f, fmt, ap);
	va_end(ap);
	fputc('\n', o->f);
}

static void head(struct out *o, int depth, const char *key)
{
	indent(o, depth);
	fprintf(o->f, "%s:\n", key);
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Plain when YAML cannot read it as anything but this string. */
static int plain_ok(const char *s)
{
	static const char *const special[] = { "~", "null", "Null", "NULL", "true", "True",
					       "TRUE", "false", "False", "FALSE", NULL };
	if (!is_alnum(s[0]) && s[0] != '/' && s[0] != '_')
		return 0;
	for (const char *p = s; *p; p++)
		if (!is_alnum(*p) && !strchr("_-./@+", *p))
			return 0;
	for (int i = 0; special[i]; i++)
		if (strcmp(s, special[i]) == 0)
			return 0;
	return 1;
}

/* Code point of the UTF-8 sequence at s and its length. Strings come from the YAML parser,
 * so they are well-formed; a cut sequence is taken a byte at a time, never read past. */
static unsigned utf8_cp(const unsigned char *s, int *len)
{
	int n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
	unsigned cp = n == 1 ? s[0] : s[0] & (0x3F >> (n - 1));
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*len = 1;
			return s[0];
		}
		cp = cp << 6 | (s[i] & 0x3F);
	}
	*len = n;
	return cp;
}

/* What the YAML reader refuses raw (C0 and C1 controls, DEL, U+FFFE, U+FFFF) or may read
 * as something else (NEL, U+2028 and U+2029 are line breaks in YAML 1.1, folded into a
 * space inside a quoted scalar; U+FEFF is a byte order mark) is written as an escape. */
static int needs_escape(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0xfeff || cp == 0xfffe || cp == 0xffff;
}

/* The inside of a double-quoted scalar. */
static void put_escaped(FILE *f, const char *s)
{
	while (*s) {
		int n;
		unsigned cp = utf8_cp((const unsigned char *)s, &n);
		if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (char)cp);
		else if (needs_escape(cp))
			fprintf(f, cp <= 0xff ? "\\x%02x" : "\\u%04x", cp);
		else
			fwrite(s, 1, (size_t)n, f);
		s += n;
	}
}

static void put_str(FILE *f, const char *s)
{
	if (plain_ok(s)) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	put_escaped(f, s);
	fputc('"', f);
}

static void kstr(struct out *o, int depth, const char *key, const char *s)
{
	indent(o, depth);
	fprintf(o->f, "%s: ", key);
	put_str(o->f, s);
	fputc('\n', o->f);
}

static void kstrs(struct out *o, int depth, const char *key, char *const *v, int n)
{
	if (n == 0)
		return;
	indent(o, depth);
	fprintf(o->f, "%s: [", key);
	for (int i = 0; i < n; i++) {
		fputs(i ? ", " : "", o->f);
		put_str(o->f, v[i]);
	}
	fputs("]\n", o->f);
}

static void kdests(struct out *o, int depth, const char *key, const struct bw_dest *d, int n)
{
	if (n == 0)
		return;
	indent(o, depth);
	fprintf(o->f, "%s: [", key);
	for (int i = 0; i < n; i++) {
		fputs(i ? ", " : "", o->f);
		put_str(o->f, d[i].text);
	}
	fputs("]\n", o->f);
}

static void kdur(struct out *o, int depth, const char *key, bw_usec us)
{
	char b[48];
	bw_format_duration(us, b, sizeof b);
	kv(o, depth, key, "%s", b);
}

static void kratio(struct out *o, int depth, const char *key, double r)
{
	char b[48];
	bw_format_ratio(r, b, sizeof b);
	kv(o, depth, key, "%s", b);
}

static void knum(struct out *o, int depth, const char *key, double v)
{
	char b[48];
	bw_format_number(v, b, sizeof b);
	kv(o, depth, key, "%s", b);
}

/* A byte bucket's burst with a size unit ("64KiB"), any other as a number. */
static void format_burst(const struct bw_rate_limit *rl, char *buf, size_t cap)
{
	if (rl->bytes)
		bw_format_size(rl->burst, buf, cap);
	else
		bw_format_number(rl->burst, buf, cap);
}

static int burst_reads_back(const struct bw_rate_limit *rl)
{
	char b[64], err[8];
	double back;
	int sized;
	format_burst(rl, b, sizeof b);
	return bw_parse_size(b, &back, &sized, err, sizeof err) == 0 && back == rl->burst;
}

static void kops(struct out *o, int depth, unsigned ops)
{
	char b[80];
	cf_ops_text(ops, b, sizeof b);
	kv(o, depth, "ops", "[%s]", b);
}

static void dump_match(struct out *o, const struct bw_match *m)
{
	head(o, 0, "match");
	kops(o, 1, m->ops);
	kdests(o, 1, "dest", m->dest, m->n_dest);
	kstrs(o, 1, "host", m->host, m->n_host);
	kstrs(o, 1, "db", m->db, m->n_db);
	kstrs(o, 1, "prog", m->prog, m->n_prog);
	kstrs(o, 1, "cmd_hash", m->cmd_hash, m->n_cmd_hash);
}

static void dump_retry(struct out *o, const struct bw_retry *r)
{
	head(o, 0, "retry");
	kv(o, 1, "attempts", "%d", r->attempts);
	if (r->n_on) {   /* none: the op's default list, which depends on the call */
		indent(o, 1);
		fputs("on: [", o->f);
		for (int i = 0; i < r->n_on; i++)
			fprintf(o->f, "%s%s", i ? ", " : "", bw_err_name(r->on[i]));
		fputs("]\n", o->f);
	}
	head(o, 1, "backoff");
	kdur(o, 2, "base", r->base);
	kdur(o, 2, "max", r->max);
	knum(o, 2, "multiplier", r->multiplier);
	kv(o, 2, "jitter", "%s", bw_jitter_names[r->jitter]);
	if (r->deadline)
		kdur(o, 1, "deadline", r->deadline);
	if (r->budget_ratio > 0) {
		head(o, 1, "budget");
		kratio(o, 2, "ratio", r->budget_ratio);
		kv(o, 2, "min_per_sec", "%d", r->budget_min_per_sec);
	}
}

static void dump_timeout(struct out *o, const struct bw_timeout *t)
{
	if (!t->connect && !t->recv && !t->send)
		return;
	head(o, 0, "timeout");
	if (t->connect)
		kdur(o, 1, "connect", t->connect);
	if (t->recv)
		kdur(o, 1, "recv", t->recv);
	if (t->send)
		kdur(o, 1, "send", t->send);
}

static void dump_breaker(struct out *o, const struct bw_breaker *b)
{
	head(o, 0, "breaker");
	kv(o, 1, "scope", "%s", bw_scope_names[b->scope]);
	head(o, 1, "trip");
	if (b->consecutive)
		kv(o, 2, "consecutive", "%d", b->consecutive);
	if (b->rate > 0)
		kratio(o, 2, "rate", b->rate);
	kdur(o, 2, "window", b->window);
	kv(o, 2, "min_calls", "%d", b->min_calls);
	if (b->slow_over) {
		head(o, 2, "slow");
		kdur(o, 3, "over", b->slow_over);
		kratio(o, 3, "rate", b->slow_rate);
	}
	kdur(o, 1, "open_for", b->open_for);
	kdur(o, 1, "open_for_max", b->open_for_max);
	kv(o, 1, "half_open_probes", "%d", b->half_open_probes);
	if (b->err)   /* none: the op's own (ECONNREFUSED, EAI_AGAIN, SQLITE_BUSY) */
		kv(o, 1, "errno", "%s", bw_err_name(b->err));
}

static void dump_rate_limit(struct out *o, const struct bw_rate_limit *rl)
{
	char b[64];
	bw_format_rate(rl->rate, rl->bytes, b, sizeof b);
	head(o, 0, "rate_limit");
	kv(o, 1, "scope", "%s", bw_scope_names[rl->scope]);
	kv(o, 1, "rate", "%s", b);
	/* The default burst, one second's worth, may be no decimal a policy can write (61/min
	 * is 1.01666.../s): then it is left out, and loading derives it again from the rate. */
	if (rl->burst != rl->rate || burst_reads_back(rl)) {
		format_burst(rl, b, sizeof b);
		kv(o, 1, "burst", "%s", b);
	}
	kv(o, 1, "on_limit", "%s", bw_onlimit_names[rl->on_limit]);
	kdur(o, 1, "max_wait", rl->max_wait);
	if (rl->err)
		kv(o, 1, "errno", "%s", bw_err_name(rl->err));
}

static void dump_concurrency(struct out *o, const struct bw_concurrency *c)
{
	head(o, 0, "concurrency");
	kv(o, 1, "scope", "%s", bw_scope_names[c->scope]);
	kv(o, 1, "max", "%d", c->max);
	kdur(o, 1, "max_wait", c->max_wait);
}

static void dump_throttle(struct out *o, const struct bw_throttle *t)
{
	head(o, 0, "throttle");
	kv(o, 1, "scope", "%s", bw_scope_names[t->scope]);
	knum(o, 1, "k", t->k);
	kdur(o, 1, "window", t->window);
	kratio(o, 1, "max_reject", t->max_reject);
}

static void dump_inject(struct out *o, const struct bw_inject *in)
{
	char lead[64];
	snprintf(lead, sizeof lead, "%*s- ", o->indent + 2, "");
	struct out io = { o->f, o->indent + 4, lead };
	kops(&io, 0, in->ops);
	if (in->err)
		kv(&io, 0, "errno", "%s", bw_err_name(in->err));
	kratio(&io, 0, "probability", in->probability);
	kv(&io, 0, "after", "%ld", in->after);
	if (in->count >= 0)
		kv(&io, 0, "count", "%ld", in->count);
	if (in->delay)
		kdur(&io, 0, "delay", in->delay);
	if (in->partial)
		kv(&io, 0, "partial", "true");
	if (in->eof)
		kv(&io, 0, "eof", "true");
	if (in->reset)
		kv(&io, 0, "reset", "true");
	if (in->latency)
		kdur(&io, 0, "latency", in->latency);
	if (in->jitter) {
		kdur(&io, 0, "jitter", in->jitter);
		kv(&io, 0, "distribution", "%s", bw_dist_names[in->distribution]);
	}
	if (in->limit_data)
		kv(&io, 0, "limit_data", "%ld", in->limit_data);
	if (in->stall)
		kv(&io, 0, "stall", "true");
	if (in->slow_close)
		kdur(&io, 0, "slow_close", in->slow_close);
	if (in->loss)
		kv(&io, 0, "loss", "true");
	if (in->duplicate)
		kv(&io, 0, "duplicate", "true");
	if (in->reorder)
		kv(&io, 0, "reorder", "true");
	if (in->per != BW_PER_CALL)
		kv(&io, 0, "per", "%s", bw_per_names[in->per]);
}

static void dump_sections(struct out *o, const struct bw_rule *r, int inject);

static void dump_rule(struct out *o, const struct bw_rule *r)
{
	kstr(o, 0, "name", r->name);
	dump_match(o, &r->match);
	dump_sections(o, r, 1);
}

/* Everything after the match; inject too when asked. */
static void dump_sections(struct out *o, const struct bw_rule *r, int inject)
{
	if (r->has_retry)
		dump_retry(o, &r->retry);
	else
		kv(o, 0, "retry", "off");
	dump_timeout(o, &r->timeout);
	if (r->breaker.enabled)
		dump_breaker(o, &r->breaker);
	if (r->rate_limit.enabled)
		dump_rate_limit(o, &r->rate_limit);
	if (r->concurrency.enabled)
		dump_concurrency(o, &r->concurrency);
	if (r->throttle.enabled)
		dump_throttle(o, &r->throttle);
	kdests(o, 0, "fallback", r->fallback, r->n_fallback);
	if (inject && r->n_inject)
		head(o, 0, "inject");
	for (int i = 0; inject && i < r->n_inject; i++)
		dump_inject(o, &r->inject[i]);
	if (r->match.ops & BW_OPBIT(BW_OP_CONNECT))   /* elsewhere it would not load */
		kv(o, 0, "nonblocking", "%s", bw_nb_names[r->nonblocking]);
	kv(o, 0, "max_keys", "%d", r->max_keys);
	kstrs(o, 0, "idempotent", r->idempotent, r->n_idempotent);
}

void bw_rule_dump(const struct bw_rule *rule, FILE *out, int indent)
{
	struct out o = { out, indent, NULL };
	dump_rule(&o, rule);
}

void bw_rule_dump_item(const struct bw_rule *rule, FILE *out)
{
	struct out o = { out, 4, "  - " };
	dump_rule(&o, rule);
}

void bw_rule_dump_policy(const struct bw_rule *rule, FILE *out, int indent)
{
	struct out o = { out, indent, NULL };
	dump_sections(&o, rule, 0);
}

static void dump_log(struct out *o, const struct bw_log *lg)
{
	head(o, 0, "log");
	if (lg->sink == BW_SINK_FILE) {
		/* quoted whole: the ':' of file: is never plain; the path may be of any length */
		indent(o, 1);
		fprintf(o->f, "sink: \"%s:", bw_sink_names[BW_SINK_FILE]);
		put_escaped(o->f, lg->path ? lg->path : "");
		fputs("\"\n", o->f);
	} else {
		kv(o, 1, "sink", "%s", bw_sink_names[lg->sink]);
	}
	kv(o, 1, "level", "%s", bw_level_names[lg->level]);
	kv(o, 1, "syslog_facility", "%s", bw_facility_name(lg->facility));
	kv(o, 1, "summary", "%s", lg->summary ? "true" : "false");
}

void bw_config_dump(const struct bw_config *cfg, FILE *out)
{
	struct out o = { out, 0, NULL };
	fprintf(out, "# effective policy of %s: defaults merged, presets expanded\n", cfg->path);
	kv(&o, 0, "version", "%d", cfg->version);
	kv(&o, 0, "mode", "%s", bw_mode_names[cfg->mode]);
	kv(&o, 0, "on_config_error", "%s", bw_onerr_names[cfg->on_config_error]);
	kv(&o, 0, "seed", "%" PRIu64, cfg->seed);
	dump_log(&o, &cfg->log);
	head(&o, 0, "state");
	kv(&o, 1, "share", "%s", bw_share_names[cfg->state.share]);
	if (cfg->state.dir)
		kstr(&o, 1, "dir", cfg->state.dir);
	else
		kv(&o, 1, "dir", "auto");
	if (cfg->state.share == BW_SHARE_FLEET) {
		const struct bw_fleet *f = &cfg->state.fleet;
		kstr(&o, 1, "redis", f->redis ? f->redis : "");
		kstr(&o, 1, "key_prefix", f->key_prefix ? f->key_prefix : BW_FLEET_PREFIX);
		kv(&o, 1, "on_unreachable", "%s", bw_unreachable_names[f->on_unreachable]);
		kv(&o, 1, "hosts", "%d", f->hosts);
		if (f->quorum && f->quorum_pct)
			kv(&o, 1, "fleet_quorum", "\"%d%%\"   # %d hosts", f->quorum,
			   bw_fleet_quorum(f));
		else
			kv(&o, 1, "fleet_quorum", "%d", bw_fleet_quorum(f));
		kv(&o, 1, "sync", "%lldms", (long long)(f->sync / BW_MS));
	}
	if (cfg->n_rules)
		head(&o, 0, "rules");
	else
		kv(&o, 0, "rules", "[]");
	for (int i = 0; i < cfg->n_rules; i++) {
		struct out ro = { out, 4, "  - " };
		dump_rule(&ro, &cfg->rules[i]);
	}
}
