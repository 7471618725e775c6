/* Internals of the policy loader, shared by config_*.c only. */
#ifndef BW_CONFIG_INT_H
#define BW_CONFIG_INT_H

#include <stdint.h>
#include <yaml.h>
#include "config.h"
#include "ops.h"

#define CF_PATH_MAX 96   /* "rules[12].breaker.trip.consecutive" and the like */

/* Which sections and keys apply to which ops: from the op table (ops.h). */
#define CF_DEST_OPS bw_ops_keyed(BW_KEY_DEST)
#define CF_HOST_OPS bw_ops_keyed(BW_KEY_HOST)
#define CF_DB_OPS bw_ops_keyed(BW_KEY_DB)
#define CF_DATA_OPS bw_ops_with(BW_OPF_BYTES)       /* byte limits; data lost if retried */
#define CF_BREAKER_OPS bw_ops_with(BW_OPF_BREAKER | BW_OPF_BREAKER_COUNTS)
#define CF_FAIL_OPS bw_ops_with(BW_OPF_REFUSE)      /* where on_limit: fail is allowed */
#define CF_FALLBACK_OPS bw_ops_with(BW_OPF_FALLBACK)
#define CF_NONBLOCKING_OPS bw_ops_with(BW_OPF_NONBLOCKING)
#define CF_IDEMPOTENT_OPS bw_ops_with(BW_OPF_IDEMPOTENT)
#define CF_BULKHEAD_OPS bw_ops_with(BW_OPF_BULKHEAD)
#define CF_THROTTLE_OPS bw_ops_with(BW_OPF_THROTTLE)
#define CF_SLOW_OPS bw_ops_with(BW_OPF_SLOW)

struct cf_mark {
	int line, col;   /* 1-based */
};

/* Fields a rule or `defaults` may set, one bit each: a rule's own bits win, the others
 * are inherited from `defaults` one by one, the rest get built-in values. */
enum cf_field {
	F_NONE = -1,                   /* a key that holds other keys, no field of its own */
	F_ATTEMPTS, F_ON, F_BASE, F_MAX, F_MULT, F_JITTER, F_DEADLINE,
	F_BUDGET, F_BUDGET_RATIO, F_BUDGET_MIN,
	F_T_CONNECT, F_T_RECV, F_T_SEND,
	F_B_SCOPE, F_B_CONSEC, F_B_RATE, F_B_WINDOW, F_B_MINCALLS, F_B_SLOW_OVER, F_B_SLOW_RATE,
	F_B_OPEN, F_B_OPENMAX, F_B_PROBES, F_B_ERR,
	F_L_SCOPE, F_L_RATE, F_L_BURST, F_L_ONLIMIT, F_L_MAXWAIT, F_L_ERR,
	F_C_SCOPE, F_C_MAX, F_C_MAXWAIT,
	F_TH_SCOPE, F_TH_K, F_TH_WINDOW, F_TH_MAXREJ,
	F_FALLBACK, F_INJECT, F_NONBLOCKING, F_MAXKEYS,
	F_COUNT
};
#define FBIT(f) ((uint64_t)1 << (f))

/* Where each field lives in struct bw_rule (config_merge.c): bytes [off, off + len). A
 * field of one member covers that member; F_ON covers retry.on and retry.n_on, F_L_RATE
 * rate_limit.rate and rate_limit.bytes. Fields copied by other means (F_BUDGET, a section
 * of fields; F_FALLBACK, F_INJECT, lists) have len 0. */
struct cf_slot {
	size_t off, len;
};
extern const struct cf_slot cf_slots[F_COUNT];

enum cf_section { S_RETRY, S_TIMEOUT, S_BREAKER, S_RATE_LIMIT, S_CONCURRENCY, S_THROTTLE,
		  S_COUNT };
#define SBIT(s) (1u << (s))

/* A rule, or `defaults`, as written. */
struct cf_draft {
	struct bw_rule r;
	char path[32];                 /* "rules[3]" or "defaults" */
	int is_defaults;
	int name_ok;
	uint64_t own;                  /* fields written here */
	uint64_t inherited;            /* fields taken from defaults */
	unsigned sections;             /* sections written here (even if empty) */
	int retry_off;                 /* `retry: off` */
	int burst_sized;               /* rate_limit.burst written with a size unit (64KiB) */
	int slow_given;                /* breaker.trip.slow written here (even if wrong) */
	struct cf_mark slow_at;
	const char *burst_text;        /* as written, while the document is loaded */
	struct cf_mark burst_at;
	struct cf_mark field_at[F_COUNT];
	struct cf_mark section_at[S_COUNT];
	struct cf_mark at;             /* the rule itself */
	struct cf_mark name_at;
};

struct cf_loader {
	yaml_document_t doc;
	const char *file;
	struct bw_diags *dg;
	struct bw_config *cfg;
	long inherited;   /* entries copied from defaults so far */
};

/* A YAML list, or one scalar standing for a list of one. */
struct cf_list {
	yaml_node_item_t *items;
	int n;
	yaml_node_item_t one;
};

/* config_compose.c: the text into l->doc within the bounds of config.h; 0, or -1 when an error
 * was reported and the document is unusable. The document is freed with cf_doc_free. */
int cf_compose(struct cf_loader *l, const char *yaml, size_t len);
void cf_doc_free(yaml_document_t *doc);
void cf_syntax_error(struct cf_loader *l, const yaml_parser_t *p);
/* A string hash for the loader's tables, and a seed for it that differs between runs. */
uint32_t cf_hash(const char *s, uint32_t seed);
uint32_t cf_seed(void);

/* config_yaml.c: diagnostics and typed access to YAML nodes. Each getter reports its own
 * error ("PATH: expected ..., got ...") and returns -1 (or NULL). */
void cf_error(struct cf_loader *l, struct cf_mark at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct cf_mark cf_mark_of(const yaml_node_t *n);
yaml_node_t *cf_node(struct cf_loader *l, int index);
const char *cf_text(const yaml_node_t *n);   /* NULL unless a non-null scalar */
void cf_expected(struct cf_loader *l, const yaml_node_t *n, const char *path, const char *what);
int cf_map(struct cf_loader *l, yaml_node_t *n, const char *path, const char *const *keys,
	   yaml_node_t **kn, yaml_node_t **vn);
const char *cf_scalar(struct cf_loader *l, yaml_node_t *n, const char *path, const char *what);
int cf_int(struct cf_loader *l, yaml_node_t *n, const char *path, long lo, long hi, long *out);
int cf_bool(struct cf_loader *l, yaml_node_t *n, const char *path, int *out);
int cf_enum(struct cf_loader *l, yaml_node_t *n, const char *path, const char *const *names,
	    int *out);
int cf_duration(struct cf_loader *l, yaml_node_t *n, const char *path, bw_usec *out);
int cf_ratio(struct cf_loader *l, yaml_node_t *n, const char *path, int positive, double *out);
int cf_list(struct cf_loader *l, yaml_node_t *n, const char *path, struct cf_list *out);
yaml_node_t *cf_list_at(struct cf_loader *l, const struct cf_list *ls, int i);
void cf_item_path(char *buf, const char *path, const struct cf_list *ls, int i);
/* Paths of children, CF_PATH_MAX bytes: "path.key", "path[i]". */
void cf_sub(char *buf, const char *path, const char *key);
void cf_index(char *buf, const char *path, int i);

/* config_rule.c: a rule or `defaults` mapping into a draft. */
void cf_parse_rule(struct cf_loader *l, yaml_node_t *n, struct cf_draft *d);
void cf_rule_free(struct bw_rule *r);
void cf_ops_text(unsigned ops, char *buf, size_t cap);
unsigned cf_err_ops(int code);        /* ops an error code can come from */
const char *cf_err_class(int code);   /* the same, as text for messages (until the next) */
unsigned cf_inject_fits(const struct bw_inject *in);   /* ops all its faults fit */
int cf_unsafe_stream_err(int code);
void cf_own(struct cf_draft *d, int f, yaml_node_t *k);
/* "PATH: does not apply: rule 'x' matches only [ops]; why" */
void cf_not_applicable(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
		       const char *path, const char *why);

/* config_section.c: retry, timeout, breaker, rate_limit, concurrency, throttle. Each of their mappings is a table
 * of keys; a key names the field it sets, and its value is read into that field's slot,
 * so that neither the order of the keys nor of the fields can pair a key with another
 * field. */
struct cf_key;
/* Reads v into the draft: 0 when the key counts as written, -1 when it does not. */
typedef int (*cf_read_fn)(struct cf_loader *l, struct cf_draft *d, const struct cf_key *key,
			  yaml_node_t *k, yaml_node_t *v, const char *path);
struct cf_key {
	const char *name;
	enum cf_field field;           /* written when read succeeds; F_NONE: nothing */
	cf_read_fn read;
	long lo, hi;                   /* integers: the range allowed */
	const char *const *names;      /* enumerations: the names, indexed by value */
	unsigned ops;                  /* the ops the key is about (BW_OPBIT); 0: any */
	const struct cf_key *keys;     /* a mapping of keys: those inside */
};
#define CF_MAX_KEYS 6   /* the most keys any section mapping has */
/* Every section mapping, by path, for the merge (timeouts apply by op) and for tests. */
struct cf_section_keys {
	const char *path;              /* "retry.backoff" */
	const struct cf_key *keys;     /* ending with a NULL name */
};
extern const struct cf_section_keys cf_sections[];   /* ending with a NULL path */
extern const struct cf_key cf_timeout_keys[];

void cf_parse_retry(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v);
void cf_parse_timeout(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v);
void cf_parse_breaker(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v);
void cf_parse_rate_limit(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			 yaml_node_t *v);
void cf_parse_concurrency(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k,
			  yaml_node_t *v);
void cf_parse_throttle(struct cf_loader *l, struct cf_draft *d, yaml_node_t *k, yaml_node_t *v);
int cf_check_err(struct cf_loader *l, struct cf_draft *d, yaml_node_t *n, const char *path,
		 unsigned ops, int *out);
/* config_rule.c: the rule's name for messages ("(unnamed)" until its name is read). */
const char *cf_rule_name(const struct cf_draft *d);

/* config_merge.c: defaults under a rule, built-in values, checks across fields. */
void cf_check_defaults(struct cf_loader *l, struct cf_draft *defs);
void cf_finish_rule(struct cf_loader *l, struct cf_draft *d, const struct cf_draft *defs);
/* Built-in values (builtin.h) into every field of an enabled section that have (FBIT
 * mask) does not hold; a disabled section is cleared. has_retry, breaker.enabled and
 * rate_limit.enabled must be set. */
void cf_fill(struct bw_rule *r, uint64_t have);

#endif
