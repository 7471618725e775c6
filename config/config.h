/* The policy: what a loaded, validated, defaults-merged policy file looks like. */
#ifndef BW_CONFIG_H
#define BW_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

/* Durations are kept in microseconds: the finest unit a policy can name. Code writes
 * them in these units (200 * BW_MS, 5 * BW_MIN), as a policy would. */
typedef int64_t bw_usec;
#define BW_US ((bw_usec)1)
#define BW_MS (1000 * BW_US)
#define BW_SEC (1000 * BW_MS)
#define BW_MIN (60 * BW_SEC)
#define BW_HOUR (60 * BW_MIN)

enum bw_op {
	BW_OP_CONNECT,
	BW_OP_ACCEPT,
	BW_OP_SEND,
	BW_OP_RECV,
	BW_OP_RESOLVE,
	BW_OP_SQLITE,
	BW_OP_PG,
	BW_OP_MYSQL,
	BW_OP_REDIS,
	BW_OP_COUNT
};
#define BW_OPBIT(op) (1u << (op))
#define BW_OPS_ALL ((1u << BW_OP_COUNT) - 1)

enum bw_mode { BW_MODE_ENFORCE, BW_MODE_OBSERVE };
enum bw_on_error { BW_ONERR_PASSTHROUGH, BW_ONERR_ABORT };
enum bw_level { BW_LVL_ERROR, BW_LVL_WARN, BW_LVL_INFO, BW_LVL_DEBUG };
enum bw_sink_kind { BW_SINK_STDERR, BW_SINK_SYSLOG, BW_SINK_FILE };
enum bw_jitter { BW_JITTER_NONE, BW_JITTER_FULL, BW_JITTER_EQUAL, BW_JITTER_DECORRELATED };
enum bw_scope { BW_SCOPE_DEST, BW_SCOPE_RULE, BW_SCOPE_PROCESS };
enum bw_on_limit { BW_LIMIT_WAIT, BW_LIMIT_FAIL };
enum bw_nonblocking { BW_NB_RETRY, BW_NB_OBSERVE };
enum bw_share { BW_SHARE_PROCESS, BW_SHARE_GROUP, BW_SHARE_FLEET };
enum bw_on_unreachable { BW_UNREACH_LOCAL, BW_UNREACH_OPEN, BW_UNREACH_CLOSED };

#define BW_MAX_ON 32       /* error names in one retry.on list */
#define BW_NAME_MAX 64     /* rule names */

struct bw_log {
	enum bw_sink_kind sink;
	char *path;              /* BW_SINK_FILE only */
	enum bw_level level;
	int level_given;         /* 0: level follows the sink (bw_level_for_sink) */
	int facility;            /* syslog facility value, e.g. LOG_USER */
	int summary;             /* 1: `exit` event at process exit */
};

struct bw_retry {
	int attempts;            /* total, including the first; 1 = no retry */
	int on[BW_MAX_ON];       /* bw_err codes (errnames.h) */
	int n_on;                /* 0: the op's default list applies */
	bw_usec base, max;
	double multiplier;
	enum bw_jitter jitter;
	bw_usec deadline;        /* 0: none */
	double budget_ratio;     /* 0: no budget */
	int budget_min_per_sec;
};

struct bw_timeout {
	bw_usec connect, recv, send;   /* 0: unset */
};

struct bw_breaker {
	int enabled;
	enum bw_scope scope;     /* dest | rule */
	int consecutive;         /* 0: not used */
	double rate;             /* 0: not used; else 0 < rate <= 1 */
	bw_usec window;
	int min_calls;
	bw_usec open_for, open_for_max;
	int half_open_probes;
	int err;                 /* bw_err code a rejected call returns */
	/* trip.slow: calls that take longer than slow_over count as slow; the breaker opens
	 * when slow ones reach slow_rate of the calls in the window (0: not used) */
	bw_usec slow_over;
	double slow_rate;
};

struct bw_rate_limit {
	int enabled;
	enum bw_scope scope;
	double rate;             /* per second */
	int bytes;               /* 1: rate counts bytes (send/recv only) */
	double burst;
	enum bw_on_limit on_limit;
	bw_usec max_wait;
	int err;
	/* 1: the bucket holds for the whole fleet (`state: { share: fleet }`, scope dest or
	 * rule): it never refills by time; the fleet syncer fills it from leases, and `rate`
	 * only says how long a wait for a token is likely to be */
	int fleet;
};

/* A bulkhead (bulwark.yaml(5), CONCURRENCY): at most `max` connections open or calls in
 * flight per destination (or per rule); beyond it a call waits up to max_wait. */
struct bw_concurrency {
	int enabled;
	enum bw_scope scope;     /* dest | rule */
	int max;
	bw_usec max_wait;
};

/* Adaptive throttling (bulwark.yaml(5), THROTTLE): a call is rejected with probability
 * max(0, (requests - k * accepts) / (requests + 1)), at most max_reject, counted over
 * the last `window`. */
struct bw_throttle {
	int enabled;
	enum bw_scope scope;     /* dest | rule */
	double k;
	bw_usec window;
	double max_reject;       /* 0 < max_reject <= 1 */
};

struct bw_inject {
	unsigned ops;            /* BW_OPBIT mask; the rule's ops when not given */
	int err;                 /* 0: no error fault */
	double probability;      /* 0..1 */
	long after;
	long count;              /* -1: no limit */
	bw_usec delay;
	int partial, eof, reset;
	/* a delay drawn for each hit: latency, give or take jitter as distribution says */
	bw_usec latency, jitter;
	int distribution;        /* BW_DIST_* */
	/* faults of a connection's stream (bulwark.yaml(5), INJECT): once an entry hits one,
	 * it stays on that connection's direction */
	long limit_data;         /* bytes: then the connection is closed; 0 none */
	int stall;               /* data stops, the connection stays open */
	bw_usec slow_close;      /* the peer's close (end of file) arrives this late */
	/* datagram sockets: a datagram sent is lost, sent twice, or sent after the next */
	int loss, duplicate, reorder;
	int per;                 /* BW_PER_CALL, or BW_PER_CONNECTION: whole connections */
};

enum bw_distribution { BW_DIST_UNIFORM, BW_DIST_NORMAL, BW_DIST_EXPONENTIAL };
enum bw_per { BW_PER_CALL, BW_PER_CONNECTION };
/* Entries of a rule that can be per: connection (a bit each, per connection). */
#define BW_INJECT_CONN_MAX 64

enum bw_dest_kind {
	BW_DEST_ADDR,            /* IP or CIDR (prefix may be full length) */
	BW_DEST_ANYADDR,         /* "*:443" */
	BW_DEST_HOST,            /* host name (glob), matched via resolved names */
	BW_DEST_UNIX             /* unix: glob */
};

struct bw_dest {
	enum bw_dest_kind kind;
	int family;              /* AF_INET / AF_INET6 for BW_DEST_ADDR */
	uint8_t addr[16];
	int prefix;              /* bits */
	int port;                /* -1: any */
	char *pattern;           /* host glob or unix path glob */
	char *text;              /* as written, for explain and events */
};

struct bw_match {
	unsigned ops;            /* BW_OPBIT mask; BW_OPS_ALL when not given */
	struct bw_dest *dest; int n_dest;
	char **host; int n_host;
	char **db; int n_db;
	char **prog; int n_prog;
	char **cmd_hash; int n_cmd_hash;   /* lower-case hex, BW_CMD_HASH_DIGITS each */
};

/* A process's command line as a rule can name it without the policy or the log holding
 * its arguments, which may be secrets: FNV-1a (64 bits) over the bytes of
 * /proc/self/cmdline (each argument ended by a NUL), written as 16 lower-case hex digits
 * (start events' cmd_hash, match.cmd_hash). */
#define BW_CMD_HASH_DIGITS 16

struct bw_rule {
	char name[BW_NAME_MAX];
	int line;                /* where the rule starts, for explain */
	struct bw_match match;
	int has_retry;           /* retry present and not `off` */
	struct bw_retry retry;
	struct bw_timeout timeout;
	struct bw_breaker breaker;
	struct bw_rate_limit rate_limit;
	struct bw_concurrency concurrency;
	struct bw_throttle throttle;
	struct bw_dest *fallback; int n_fallback;
	struct bw_inject *inject; int n_inject;
	enum bw_nonblocking nonblocking;
	int max_keys;            /* per-destination state bound */
	/* statements (a prefix of their text) and commands (their name) the policy's author
	 * says may run twice: sent again after a connection lost once they were sent, as a
	 * read-only one is (bulwark.yaml(5), RETRY) */
	char **idempotent; int n_idempotent;
};

/* Bounds on what loading a policy may cost, in every process that loads the library. A
 * real policy is a few KB, nested 6 deep, with a few hundred nodes; these are far above
 * it and keep the worst file to tens of milliseconds and megabytes. */
#define BW_POLICY_MAX_BYTES (1 << 20)
#define BW_POLICY_MAX_DEPTH 64          /* nested lists and mappings */
#define BW_POLICY_MAX_NODES 50000       /* scalars, lists and mappings written */
#define BW_POLICY_MAX_RULES 4095        /* rules, numbered in 12 bits per descriptor */
#define BW_POLICY_MAX_ALIASED 50000     /* nodes aliases stand for, counted at each use */
#define BW_POLICY_MAX_INHERITED 50000   /* fallback and inject entries copied from defaults */

/* Names of shared state. A group's file is <state dir>/<group>.state; the group's name is
 * also in the file's header, which holds BW_GROUP_MAX bytes of it. The directory is bounded
 * so that the whole path fits in PATH_MAX: a longer one is refused (by the loader for
 * state.dir, at run time for $XDG_RUNTIME_DIR), never cut short, since a cut path names
 * another directory. */
#define BW_STATE_SUFFIX ".state"
#define BW_GROUP_MAX 63
#define BW_STATE_DIR_MAX (PATH_MAX - (int)sizeof "/" BW_STATE_SUFFIX - BW_GROUP_MAX)

/* `state: { share: fleet }`: where the fleet's Redis is and how to behave without it
 * (bulwark.yaml(5), STATE; docs/design.md §6.1). */
struct bw_fleet {
	char *redis;             /* as written */
	int family;              /* AF_INET, AF_INET6 or AF_UNIX */
	uint8_t addr[16];
	int port;
	int db;
	char *unix_path;         /* AF_UNIX */
	char *key_prefix;        /* NULL: BW_FLEET_PREFIX */
	enum bw_on_unreachable on_unreachable;
	int hosts;               /* expected fleet size */
	int quorum;              /* hosts whose breaker must be open; 0: the default */
	int quorum_pct;          /* 1: quorum is a percentage of hosts */
	bw_usec sync;            /* how often the leases are refilled */
};
#define BW_FLEET_PREFIX "bulwark:"
#define BW_FLEET_PREFIX_MAX 64

struct bw_state {
	enum bw_share share;
	char *dir;               /* NULL: auto; else at most BW_STATE_DIR_MAX characters */
	struct bw_fleet fleet;
};

struct bw_config {
	char *path;              /* absolute path, or "<default>" */
	int version;
	enum bw_mode mode;
	enum bw_on_error on_config_error;
	uint64_t seed;
	struct bw_log log;
	struct bw_rule *rules; int n_rules;
	struct bw_state state;
	unsigned ops;            /* union of all rules' ops: the hooks' fast path */
};

/* One problem in a policy file; line and col are 1-based, 0 when unknown. */
struct bw_diag {
	char file[256];
	int line, col;
	char msg[256];
};

#define BW_MAX_DIAGS 32
struct bw_diags {
	struct bw_diag d[BW_MAX_DIAGS];
	int n;                   /* may exceed BW_MAX_DIAGS: the count of all problems */
};

/* The level of a log that names none: warn on stderr, which the program and its test
 * suite read, so that only what changes the program's behaviour shows there; info in a
 * file or syslog, which also get what `bulwark report` adds up (start, fail, exit). */
enum bw_level bw_level_for_sink(enum bw_sink_kind sink);
/* lg->level from lg->sink, unless the level was given. */
void bw_log_settle(struct bw_log *lg);

/* Load from a file or a string. NULL on error with at least one diagnostic. */
struct bw_config *bw_config_load_file(const char *path, struct bw_diags *diags);
struct bw_config *bw_config_load_string(const char *name, const char *yaml, size_t len,
					struct bw_diags *diags);
/* The built-in policy, built directly (every process without a policy file starts with
 * it: parsing its YAML would cost a tenth of a millisecond each time); and the same parsed
 * from bw_default_policy_yaml, which tests hold the two to. */
struct bw_config *bw_config_default(void);
struct bw_config *bw_config_parse_default(void);
/* The rule the built-in policy gets in observe mode (bw_default_observe_yaml), added to
 * c, which is bw_config_default's. 0, or -1 (out of memory; c is unchanged). */
int bw_config_default_observe(struct bw_config *c);
void bw_config_free(struct bw_config *cfg);

/* The built-in policy as YAML text: what `bulwark check --default` prints; and the rule
 * observe mode adds at its end. */
extern const char bw_default_policy_yaml[];
extern const char bw_default_observe_yaml[];

/* Effective policy as YAML, presets and defaults expanded. */
void bw_config_dump(const struct bw_config *cfg, FILE *out);
void bw_rule_dump(const struct bw_rule *rule, FILE *out, int indent);
/* The same as an item of `rules:` ("  - name: ..."). */
void bw_rule_dump_item(const struct bw_rule *rule, FILE *out);
/* Only what the rule does, after its match, without its inject entries: its policy, to
 * give a rule written elsewhere (`bulwark report --replay -c FILE`). */
void bw_rule_dump_policy(const struct bw_rule *rule, FILE *out, int indent);

/* Whether two rules say the same, name included, by their effective form (1); 0 when
 * they differ or it cannot be told (out of memory). */
int bw_rule_same(const struct bw_rule *a, const struct bw_rule *b);

/* What differs between two policies, as BW_CFG_* bits (0: the same policy). RULES: a rule
 * added, removed, changed or moved (the first match wins, so order counts); LOG: where
 * events go; STATE: how state is shared; LEVEL: log.level or log.summary. */
enum {
	BW_CFG_MODE = 1, BW_CFG_LEVEL = 2, BW_CFG_SEED = 4, BW_CFG_LOG = 8, BW_CFG_STATE = 16,
	BW_CFG_RULES = 32
};
unsigned bw_config_differs(const struct bw_config *a, const struct bw_config *b);

/* Format "FILE:LINE:COL: message" into buf. */
void bw_diag_format(const struct bw_diag *d, char *buf, size_t cap);


#endif
