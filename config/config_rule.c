/* A rule as written: name, match, fallback, inject and the small keys. The four policy
 * sections are in config_section.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "config_int.h"
#include "dest.h"
#include "errnames.h"
#include "vocab.h"

/* Each mapping's keys, named by id: the id, not the position, says which key is which. */
enum { K_NAME, K_MATCH, K_RETRY, K_TIMEOUT, K_BREAKER, K_RATE_LIMIT, K_CONCURRENCY,
       K_THROTTLE, K_FALLBACK, K_INJECT, K_NONBLOCKING, K_MAX_KEYS, K_IDEMPOTENT, K_COUNT };
static const char *const rule_keys[K_COUNT + 1] = {
	[K_NAME] = "name", [K_MATCH] = "match", [K_RETRY] = "retry", [K_TIMEOUT] = "timeout",
	[K_BREAKER] = "breaker", [K_RATE_LIMIT] = "rate_limit", [K_CONCURRENCY] = "concurrency",
	[K_THROTTLE] = "throttle", [K_FALLBACK] = "fallback",
	[K_INJECT] = "inject", [K_NONBLOCKING] = "nonblocking", [K_MAX_KEYS] = "max_keys",
	[K_IDEMPOTENT] = "idempotent",
};
/* `defaults` takes every key of a rule but these two, which come first for that reason. */
#define DEFAULTS_SKIP 2
_Static_assert(K_NAME < DEFAULTS_SKIP && K_MATCH < DEFAULTS_SKIP,
	       "defaults have no name or match");

enum { M_OPS, M_DEST, M_HOST, M_DB, M_PROG, M_CMD, M_COUNT };
static const char *const match_keys[M_COUNT + 1] = {
	[M_OPS] = "ops", [M_DEST] = "dest", [M_HOST] = "host", [M_DB] = "db", [M_PROG] = "prog",
	[M_CMD] = "cmd_hash",
};

enum { I_OPS, I_ERRNO, I_PROB, I_AFTER, I_COUNT, I_DELAY, I_PARTIAL, I_EOF, I_RESET,
       I_LATENCY, I_JITTER, I_DIST, I_LIMIT, I_STALL, I_SLOW_CLOSE, I_LOSS, I_DUP, I_REORDER,
       I_PER, I_N };
static const char *const inject_keys[I_N + 1] = {
	[I_OPS] = "ops", [I_ERRNO] = "errno", [I_PROB] = "probability", [I_AFTER] = "after",
	[I_COUNT] = "count", [I_DELAY] = "delay", [I_PARTIAL] = "partial", [I_EOF] = "eof",
	[I_RESET] = "reset", [I_LATENCY] = "latency", [I_JITTER] = "jitter",
	[I_DIST] = "distribution", [I_LIMIT] = "limit_data", [I_STALL] = "stall",
	[I_SLOW_CLOSE] = "slow_close", [I_LOSS] = "loss", [I_DUP] = "duplicate",
	[I_REORDER] = "reorder", [I_PER] = "per",
};

void cf_ops_text(unsigned ops, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; i < BW_OP_COUNT && o < cap; i++)
		if (ops & BW_OPBIT(i))
			o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", bw_op_name(i));
}

unsigned cf_err_ops(int code)
{
	return bw_ops_in_space(bw_err_space(code));
}

const char *cf_err_class(int code)
{
	static char text[128];
	char ops[80];
	unsigned m = cf_err_ops(code);
	int first = 0;
	while (first < BW_OP_COUNT && !(m & BW_OPBIT(first)))
		first++;
	if (first == BW_OP_COUNT)
		return "no op ends with such an error";
	bw_ops_phrase(m, ops, sizeof ops);
	snprintf(text, sizeof text, "%s apply %sto %s", bw_op(first)->what,
		 (m & (m - 1)) ? "" : "only ", ops);
	return text;
}

int cf_unsafe_stream_err(int code)
{
	return code == ECONNRESET || code == EPIPE || code == ENOTCONN || code == ETIMEDOUT;
}

unsigned cf_inject_fits(const struct bw_inject *in)
{
	unsigned fits = BW_OPS_ALL;
	if (in->err)
		fits &= cf_err_ops(in->err);
	if (in->partial || in->reset)
		fits &= bw_ops_with(BW_OPF_STREAM_FAULTS);
	if (in->eof || in->slow_close)
		fits &= bw_ops_with(BW_OPF_EOF);
	/* faults of a connection's byte stream or of its datagrams: transfers only */
	if (in->limit_data || in->stall || in->loss || in->duplicate || in->reorder ||
	    in->per == BW_PER_CONNECTION)
		fits &= bw_ops_with(BW_OPF_STREAM_FAULTS);
	/* made by the sender: a copy sent, a datagram held back */
	if (in->duplicate || in->reorder)
		fits &= BW_OPBIT(BW_OP_SEND);
	return fits;
}

const char *cf_rule_name(const struct cf_draft *d)
{
	return d->name_ok ? d->r.name : "(unnamed)";
}

static int valid_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static void parse_name(struct cf_loader *l, struct cf_draft *d, yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	cf_sub(path, d->path, "name");
	if (!v) {
		cf_error(l, d->at, "%s: missing required key 'name'", d->path);
		return;
	}
	const char *s = cf_scalar(l, v, path, "a rule name");
	if (!s)
		return;
	if (!*s) {
		cf_error(l, cf_mark_of(v), "%s: a rule name cannot be empty", path);
		return;
	}
	for (const char *p = s; *p; p++) {
		if (!valid_name_char(*p)) {
			cf_error(l, cf_mark_of(v), "%s: invalid rule name '%s'; use only letters, "
				 "digits, '_', '.' and '-'", path, s);
			return;
		}
	}
	if (strlen(s) >= BW_NAME_MAX) {
		cf_error(l, cf_mark_of(v), "%s: rule name is longer than %d characters", path,
			 BW_NAME_MAX - 1);
		return;
	}
	strcpy(d->r.name, s);
	d->name_ok = 1;
	d->name_at = cf_mark_of(v);
}

/* A list of op names into a mask; 0 on error. */
static unsigned parse_ops(struct cf_loader *l, yaml_node_t *v, const char *path)
{
	char ip[CF_PATH_MAX];
	struct cf_list ls;
	unsigned ops = 0;
	int bad = 0;
	if (cf_list(l, v, path, &ls) < 0)
		return 0;
	if (ls.n == 0) {
		cf_error(l, cf_mark_of(v), "%s: expected at least one op", path);
		return 0;
	}
	for (int i = 0; i < ls.n; i++) {
		yaml_node_t *it = cf_list_at(l, &ls, i);
		int op;
		cf_item_path(ip, path, &ls, i);
		if (cf_enum(l, it, ip, bw_op_names, &op) < 0)
			bad = 1;
		else
			ops |= BW_OPBIT(op);
	}
	return bad ? 0 : ops;
}

/* A list left short would match more than was written: what cannot be kept is an error. */
static void parse_strings(struct cf_loader *l, yaml_node_t *v, const char *path, char ***out,
			  int *n)
{
	char ip[CF_PATH_MAX];
	struct cf_list ls;
	if (cf_list(l, v, path, &ls) < 0)
		return;
	if (!(*out = calloc((size_t)ls.n + 1, sizeof **out))) {
		cf_error(l, cf_mark_of(v), "%s: out of memory", path);
		return;
	}
	for (int i = 0; i < ls.n; i++) {
		yaml_node_t *it = cf_list_at(l, &ls, i);
		cf_item_path(ip, path, &ls, i);
		const char *s = cf_scalar(l, it, ip, "a name or glob");
		if (s && !((*out)[*n] = strdup(s)))
			cf_error(l, cf_mark_of(it), "%s: out of memory", ip);
		else if (s)
			(*n)++;
	}
}

/* Command-line hashes as start events write them (bw_cmd_hash): 16 hex digits, kept in
 * lower case so that matching is a plain comparison. Anything else could never match. */
static void parse_cmd_hashes(struct cf_loader *l, yaml_node_t *v, const char *path,
			     struct bw_match *m)
{
	char ip[CF_PATH_MAX];
	struct cf_list ls;
	if (cf_list(l, v, path, &ls) < 0)
		return;
	if (!(m->cmd_hash = calloc((size_t)ls.n + 1, sizeof *m->cmd_hash))) {
		cf_error(l, cf_mark_of(v), "%s: out of memory", path);
		return;
	}
	for (int i = 0; i < ls.n; i++) {
		yaml_node_t *it = cf_list_at(l, &ls, i);
		cf_item_path(ip, path, &ls, i);
		const char *s = cf_scalar(l, it, ip, "a command-line hash");
		if (!s)
			continue;
		size_t n = strlen(s), j = 0;
		while (j < n && strchr("0123456789abcdefABCDEF", s[j]))
			j++;
		if (n != BW_CMD_HASH_DIGITS || j != n) {
			cf_error(l, cf_mark_of(it), "%s: expected a command-line hash of %d hex "
				 "digits, as a start event's cmd_hash, got '%s'", ip,
				 BW_CMD_HASH_DIGITS, s);
			continue;
		}
		char *h = strdup(s);
		if (!h) {
			cf_error(l, cf_mark_of(it), "%s: out of memory", ip);
			continue;
		}
		for (char *p = h; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
		m->cmd_hash[m->n_cmd_hash++] = h;
	}
}

static void parse_dests(struct cf_loader *l, yaml_node_t *v, const char *path,
			struct bw_dest **out, int *n, int concrete)
{
	char ip[CF_PATH_MAX], err[200];
	struct cf_list ls;
	if (cf_list(l, v, path, &ls) < 0)
		return;
	if (!(*out = calloc((size_t)ls.n + 1, sizeof **out))) {
		cf_error(l, cf_mark_of(v), "%s: out of memory", path);
		return;
	}
	for (int i = 0; i < ls.n; i++) {
		yaml_node_t *it = cf_list_at(l, &ls, i);
		const char *s;
		cf_item_path(ip, path, &ls, i);
		if (!(s = cf_scalar(l, it, ip, "a destination such as host:port")))
			continue;
		if (bw_dest_parse(s, &(*out)[*n], err, sizeof err) < 0) {
			cf_error(l, cf_mark_of(it), "%s: %s", ip, err);
		} else if (concrete && !bw_dest_concrete(&(*out)[*n])) {
			cf_error(l, cf_mark_of(it), "%s: a fallback must be one endpoint (host:port, "
				 "ip:port or unix:path, no glob or range), got '%s'", ip, s);
			bw_dest_free(&(*out)[*n]);
		} else {
			(*n)++;
		}
	}
}

/* host needs resolve, dest socket ops, db sqlite: a rule they leave no op for is a typo. */
static void check_reachable(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k)
{
	struct bw_match *m = &d->r.match;
	char ops[64], path[CF_PATH_MAX];
	const char *why = NULL;
	unsigned left = m->ops;
	cf_ops_text(m->ops, ops, sizeof ops);
	cf_sub(path, d->path, "match");
	char which[80], text[128];
	if (m->n_host && !(left &= CF_HOST_OPS))
		why = "host", bw_ops_phrase(CF_HOST_OPS, which, sizeof which);
	else if (m->n_dest && !(left &= CF_DEST_OPS))
		why = "dest", bw_ops_phrase(CF_DEST_OPS, which, sizeof which);
	else if (m->n_db && !(left &= CF_DB_OPS))
		why = "db", bw_ops_phrase(CF_DB_OPS, which, sizeof which);
	if (why) {
		snprintf(text, sizeof text, "%s applies only to %s", why, which);
		why = text;
	}
	if (why)
		cf_error(l, cf_mark_of(k), "%s: can never match: %s, and the rule's ops are [%s]%s",
			 path, why, ops, m->n_host && m->n_dest ? "; host and dest exclude each other" : "");
}

static void parse_match(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v)
{
	yaml_node_t *kn[M_COUNT], *vn[M_COUNT];
	char path[CF_PATH_MAX], sub[CF_PATH_MAX];
	struct bw_match *m = &d->r.match;
	cf_sub(path, d->path, "match");
	if (cf_map(l, v, path, match_keys, kn, vn) < 0)
		return;
	for (int i = 0; i < M_COUNT; i++) {
		if (!vn[i])
			continue;
		cf_sub(sub, path, match_keys[i]);
		/* an empty list would silently match everything, the opposite of what was
		 * written: a condition, when given, names at least one thing */
		if (i != M_OPS && vn[i]->type == YAML_SEQUENCE_NODE &&
		    vn[i]->data.sequence.items.start == vn[i]->data.sequence.items.top) {
			cf_error(l, cf_mark_of(vn[i]), "%s: expected at least one %s", sub,
				 i == M_DEST ? "destination" : i == M_HOST ? "host name" :
				 i == M_DB ? "database" : i == M_CMD ? "command-line hash" : "program");
			continue;
		}
		if (i == M_OPS)
			m->ops = parse_ops(l, vn[i], sub);
		else if (i == M_DEST)
			parse_dests(l, vn[i], sub, &m->dest, &m->n_dest, 0);
		else if (i == M_CMD)
			parse_cmd_hashes(l, vn[i], sub, m);
		else
			parse_strings(l, vn[i], sub, i == M_HOST ? &m->host : i == M_DB ? &m->db
							      : &m->prog,
				      i == M_HOST ? &m->n_host : i == M_DB ? &m->n_db : &m->n_prog);
	}
	if (m->ops)
		check_reachable(l, d, k);
}

void cf_not_applicable(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
		       const char *path, const char *why)
{
	char ops[64];
	cf_ops_text(d->r.match.ops, ops, sizeof ops);
	cf_error(l, cf_mark_of(k), "%s: does not apply: rule '%s' matches only [%s]%s%s", path,
		 cf_rule_name(d), ops, why ? "; " : "", why ? why : "");
}

void cf_own(struct cf_draft *d, int f, yaml_node_t *k)
{
	d->own |= FBIT(f);
	d->field_at[f] = cf_mark_of(k);
}

static void parse_fallback(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			   yaml_node_t *v)
{
	char path[CF_PATH_MAX];
	cf_sub(path, d->path, "fallback");
	cf_own(d, F_FALLBACK, k);   /* even `fallback: []`: it clears one from defaults */
	if (!d->is_defaults && !(d->r.match.ops & CF_FALLBACK_OPS))
		cf_not_applicable(l, d, k, path, "fallback needs connect");
	else
		parse_dests(l, v, path, &d->r.fallback, &d->r.n_fallback, 1);
}

/* The fault that limits which ops an entry fits (the key index), and why, as text. */
static int limiting_fault(const struct bw_inject *in, const char **why)
{
	static char text[96];
	char ops[64];
	if (in->eof || in->slow_close) {
		bw_ops_phrase(bw_ops_with(BW_OPF_EOF), ops, sizeof ops);
		snprintf(text, sizeof text, "%s applies only to %s", in->eof ? "eof" : "slow_close",
			 ops);
		*why = text;
		return in->eof ? I_EOF : I_SLOW_CLOSE;
	}
	if (in->duplicate || in->reorder) {
		snprintf(text, sizeof text, "%s applies only to send",
			 in->duplicate ? "duplicate" : "reorder");
		*why = text;
		return in->duplicate ? I_DUP : I_REORDER;
	}
	if (in->limit_data || in->stall || in->loss || in->per == BW_PER_CONNECTION) {
		int k = in->limit_data ? I_LIMIT : in->stall ? I_STALL : in->loss ? I_LOSS : I_PER;
		bw_ops_phrase(bw_ops_with(BW_OPF_STREAM_FAULTS), ops, sizeof ops);
		snprintf(text, sizeof text, "%s applies only to %s", inject_keys[k], ops);
		*why = text;
		return k;
	}
	if (in->partial || in->reset) {
		bw_ops_phrase(bw_ops_with(BW_OPF_STREAM_FAULTS), ops, sizeof ops);
		snprintf(text, sizeof text, "partial and reset apply only to %s", ops);
		*why = text;
		return in->partial ? I_PARTIAL : I_RESET;
	}
	*why = cf_err_class(in->err);
	return I_ERRNO;
}

/* Faults and ops of one inject entry must fit each other and the rule (bulwark.yaml(5), "What applies to which op"). */
static void check_inject(struct cf_loader *l, struct cf_draft *d, struct bw_inject *in,
			 yaml_node_t *n, yaml_node_t *const *kn, const char *path)
{
	int faults = !!in->err + in->partial + in->eof + in->reset + !!in->limit_data +
		     in->stall + !!in->slow_close + in->loss + in->duplicate + in->reorder;
	unsigned fits = cf_inject_fits(in);
	char ops[64], sub[CF_PATH_MAX];
	const char *why;
	if ((kn[I_JITTER] || kn[I_DIST]) && !kn[I_LATENCY]) {
		cf_error(l, cf_mark_of(kn[I_JITTER] ? kn[I_JITTER] : kn[I_DIST]),
			 "%s: %s goes with latency", path, kn[I_JITTER] ? "jitter" : "distribution");
		return;
	}
	if (faults == 0 && !in->delay && !kn[I_LATENCY]) {
		cf_error(l, cf_mark_of(n), "%s: nothing to inject; give errno, delay, latency, "
			 "partial, eof, reset, limit_data, stall, slow_close, loss, duplicate or "
			 "reorder", path);
		return;
	}
	if (faults > 1) {
		cf_error(l, cf_mark_of(n), "%s: choose one of errno, partial, eof, reset, "
			 "limit_data, stall, slow_close, loss, duplicate and reorder (delay and "
			 "latency may go with any)", path);
		return;
	}
	if (faults == 0 && in->per != BW_PER_CONNECTION) {   /* a delay alone fits every op */
		if (!in->ops && !d->is_defaults)
			in->ops = d->r.match.ops;
		return;
	}
	int f = limiting_fault(in, &why);
	cf_sub(sub, path, inject_keys[f]);
	if (in->ops && (in->ops & ~fits)) {
		cf_ops_text(in->ops & ~fits, ops, sizeof ops);
		cf_error(l, cf_mark_of(kn[f]), "%s: %s, but ops include %s", sub, why, ops);
	} else if (!in->ops && !d->is_defaults && !(in->ops = d->r.match.ops & fits)) {
		cf_not_applicable(l, d, kn[f], sub, why);
	}
}

static void parse_inject_ops(struct cf_loader *l, struct cf_draft *d, struct bw_inject *in,
			     yaml_node_t *v, const char *path)
{
	char ops[64];
	in->ops = parse_ops(l, v, path);
	if (!d->is_defaults && (in->ops & ~d->r.match.ops)) {
		cf_ops_text(d->r.match.ops, ops, sizeof ops);
		cf_error(l, cf_mark_of(v), "%s: inject ops must be among the rule's ops [%s]", path,
			 ops);
		in->ops &= d->r.match.ops;
	}
}

static void parse_inject_field(struct cf_loader *l, struct cf_draft *d, int i, yaml_node_t *v,
			       const char *path, struct bw_inject *in)
{
	char sub[CF_PATH_MAX];
	long n;
	cf_sub(sub, path, inject_keys[i]);
	switch (i) {
	case I_OPS:
		parse_inject_ops(l, d, in, v, sub);
		break;
	case I_ERRNO:
		cf_check_err(l, d, v, sub, BW_OPS_ALL, &in->err);
		break;
	case I_PROB:
		cf_ratio(l, v, sub, 0, &in->probability);
		break;
	case I_AFTER:
		if (cf_int(l, v, sub, 0, 1000000000, &n) == 0)
			in->after = n;
		break;
	case I_COUNT:
		if (cf_int(l, v, sub, 1, 1000000000, &n) == 0)
			in->count = n;
		break;
	case I_DELAY:
		cf_duration(l, v, sub, &in->delay);
		break;
	case I_LATENCY:
		cf_duration(l, v, sub, &in->latency);
		break;
	case I_JITTER:
		cf_duration(l, v, sub, &in->jitter);
		break;
	case I_SLOW_CLOSE:
		if (cf_duration(l, v, sub, &in->slow_close) == 0 && !in->slow_close)
			cf_error(l, cf_mark_of(v), "%s: expected a duration above 0", sub);
		break;
	case I_DIST:
		cf_enum(l, v, sub, bw_dist_names, &in->distribution);
		break;
	case I_PER:
		cf_enum(l, v, sub, bw_per_names, &in->per);
		break;
	case I_LIMIT:
		if (cf_int(l, v, sub, 1, 2147483647L, &n) == 0)
			in->limit_data = n;
		break;
	case I_STALL:
		cf_bool(l, v, sub, &in->stall);
		break;
	case I_LOSS:
	case I_DUP:
	case I_REORDER:
		cf_bool(l, v, sub, i == I_LOSS ? &in->loss : i == I_DUP ? &in->duplicate
						  : &in->reorder);
		break;
	default:
		cf_bool(l, v, sub, i == I_PARTIAL ? &in->partial : i == I_EOF ? &in->eof
									: &in->reset);
	}
}

static void parse_inject_one(struct cf_loader *l, struct cf_draft *d, yaml_node_t *n,
			     const char *path, struct bw_inject *in)
{
	yaml_node_t *kn[I_N], *vn[I_N];
	int before = l->dg->n;
	in->probability = 1;
	in->count = -1;
	if (cf_map(l, n, path, inject_keys, kn, vn) < 0)
		return;
	for (int i = 0; i < I_N; i++)
		if (vn[i])
			parse_inject_field(l, d, i, vn[i], path, in);
	if (l->dg->n == before)   /* a bad value would make the checks below misleading */
		check_inject(l, d, in, n, kn, path);
}

static void parse_inject(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			 yaml_node_t *v)
{
	char path[CF_PATH_MAX], ip[CF_PATH_MAX];
	cf_sub(path, d->path, "inject");
	cf_own(d, F_INJECT, k);
	if (v->type != YAML_SEQUENCE_NODE) {
		cf_error(l, cf_mark_of(v), "%s: expected a list of faults", path);
		return;
	}
	int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0)
		return;
	if (!(d->r.inject = calloc((size_t)n, sizeof *d->r.inject))) {
		cf_error(l, cf_mark_of(v), "%s: out of memory", path);
		return;
	}
	d->r.n_inject = n;
	for (int i = 0; i < n; i++) {
		cf_index(ip, path, i);
		parse_inject_one(l, d, cf_node(l, v->data.sequence.items.start[i]), ip,
				 &d->r.inject[i]);
		/* a connection keeps which of them chose it in one word */
		if (i >= BW_INJECT_CONN_MAX && d->r.inject[i].per == BW_PER_CONNECTION)
			cf_error(l, cf_mark_of(cf_node(l, v->data.sequence.items.start[i])),
				 "%s: per: connection is for the first %d inject entries of a rule",
				 ip, BW_INJECT_CONN_MAX);
	}
}

/* Statements and commands that may run twice. Not in `defaults`: what a statement does is
 * known of one application's statements, which one rule names. */
static void parse_idempotent(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			     yaml_node_t *v)
{
	char path[CF_PATH_MAX], which[80], why[128];
	cf_sub(path, d->path, "idempotent");
	bw_ops_phrase(CF_IDEMPOTENT_OPS, which, sizeof which);
	if (d->is_defaults) {
		cf_error(l, cf_mark_of(k), "%s: belongs in a rule: it names that rule's statements "
			 "or commands", path);
		return;
	}
	if (!(d->r.match.ops & CF_IDEMPOTENT_OPS)) {
		snprintf(why, sizeof why, "idempotent applies only to %s", which);
		cf_not_applicable(l, d, k, path, why);
		return;
	}
	if (v->type == YAML_SEQUENCE_NODE &&
	    v->data.sequence.items.start == v->data.sequence.items.top) {
		cf_error(l, cf_mark_of(v), "%s: expected at least one statement or command", path);
		return;
	}
	parse_strings(l, v, path, &d->r.idempotent, &d->r.n_idempotent);
	for (int i = 0; i < d->r.n_idempotent; i++)
		if (!d->r.idempotent[i][0])
			cf_error(l, cf_mark_of(v), "%s[%d]: an empty entry would name every "
				 "statement", path, i);
}

static void parse_small(struct cf_loader *l, struct cf_draft *d, yaml_node_t *const *k,
			yaml_node_t *const *v)
{
	char path[CF_PATH_MAX];
	long n;
	int e;
	if (v[K_NONBLOCKING]) {
		cf_sub(path, d->path, "nonblocking");
		cf_own(d, F_NONBLOCKING, k[K_NONBLOCKING]);
		if (!d->is_defaults && !(d->r.match.ops & CF_NONBLOCKING_OPS))
			cf_not_applicable(l, d, k[K_NONBLOCKING], path,
					  "it is about non-blocking connects");
		else if (cf_enum(l, v[K_NONBLOCKING], path, bw_nb_names, &e) == 0)
			d->r.nonblocking = (enum bw_nonblocking)e;
	}
	if (v[K_MAX_KEYS]) {
		cf_sub(path, d->path, "max_keys");
		cf_own(d, F_MAXKEYS, k[K_MAX_KEYS]);
		if (cf_int(l, v[K_MAX_KEYS], path, 1, 1000000, &n) == 0)
			d->r.max_keys = (int)n;
	}
}

void cf_parse_rule(struct cf_loader *l, yaml_node_t *n, struct cf_draft *d)
{
	yaml_node_t *k[K_COUNT] = { 0 }, *v[K_COUNT] = { 0 };
	int skip = d->is_defaults ? DEFAULTS_SKIP : 0;
	d->at = cf_mark_of(n);
	d->r.line = d->at.line;
	d->r.match.ops = BW_OPS_ALL;
	if (cf_map(l, n, d->path, rule_keys + skip, k + skip, v + skip) < 0)
		return;
	if (!d->is_defaults)
		parse_name(l, d, v[K_NAME]);
	if (v[K_MATCH])
		parse_match(l, d, k[K_MATCH], v[K_MATCH]);
	if (!d->r.match.ops)
		return;   /* ops were wrong: checks against them would only add noise */
	if (v[K_RETRY])
		cf_parse_retry(l, d, k[K_RETRY], v[K_RETRY]);
	if (v[K_TIMEOUT])
		cf_parse_timeout(l, d, k[K_TIMEOUT], v[K_TIMEOUT]);
	if (v[K_BREAKER])
		cf_parse_breaker(l, d, k[K_BREAKER], v[K_BREAKER]);
	if (v[K_RATE_LIMIT])
		cf_parse_rate_limit(l, d, k[K_RATE_LIMIT], v[K_RATE_LIMIT]);
	if (v[K_CONCURRENCY])
		cf_parse_concurrency(l, d, k[K_CONCURRENCY], v[K_CONCURRENCY]);
	if (v[K_THROTTLE])
		cf_parse_throttle(l, d, k[K_THROTTLE], v[K_THROTTLE]);
	if (v[K_FALLBACK])
		parse_fallback(l, d, k[K_FALLBACK], v[K_FALLBACK]);
	if (v[K_INJECT])
		parse_inject(l, d, k[K_INJECT], v[K_INJECT]);
	parse_small(l, d, k, v);
	if (v[K_IDEMPOTENT])
		parse_idempotent(l, d, k[K_IDEMPOTENT], v[K_IDEMPOTENT]);
}

static void free_strings(char **s, int n)
{
	for (int i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

static void free_dests(struct bw_dest *d, int n)
{
	for (int i = 0; i < n; i++)
		bw_dest_free(&d[i]);
	free(d);
}

void cf_rule_free(struct bw_rule *r)
{
	free_dests(r->match.dest, r->match.n_dest);
	free_strings(r->match.host, r->match.n_host);
	free_strings(r->match.db, r->match.n_db);
	free_strings(r->match.prog, r->match.n_prog);
	free_strings(r->idempotent, r->n_idempotent);
	free_strings(r->match.cmd_hash, r->match.n_cmd_hash);
	free_dests(r->fallback, r->n_fallback);
	free(r->inject);
	memset(r, 0, sizeof *r);
}
