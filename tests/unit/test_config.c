/* The policy loader: valid files, every kind of mistake with its exact diagnostic, merging
 * of defaults, and dump -> load round trips. Policies are loaded from strings under a fake
 * file name, so lines and columns are exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>
#include "config.h"
#include "engine.h"
#include "ops.h"
#include "errnames.h"
#include "dump_text.h"
#include "overrides.h"

#define MS 1000LL
#define SEC 1000000LL
#define OP(x) BW_OPBIT(BW_OP_##x)

static struct bw_config *load(const char *yaml, struct bw_diags *dg)
{
	memset(dg, 0, sizeof *dg);
	return bw_config_load_string("policy.yaml", yaml, strlen(yaml), dg);
}

static struct bw_config *load_ok(const char *yaml)
{
	struct bw_diags dg;
	struct bw_config *cfg = load(yaml, &dg);
	char line[600];
	for (int i = 0; i < dg.n && i < BW_MAX_DIAGS; i++) {
		bw_diag_format(&dg.d[i], line, sizeof line);
		print_error("unexpected: %s\n", line);
	}
	assert_non_null(cfg);
	assert_int_equal(dg.n, 0);
	return cfg;
}

static const struct bw_rule *rule(const struct bw_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_rules; i++)
		if (strcmp(cfg->rules[i].name, name) == 0)
			return &cfg->rules[i];
	fail_msg("no rule %s", name);
	return NULL;
}

/* ---- mistakes: each with the exact first diagnostic ---- */

struct bad_case {
	const char *yaml;
	const char *want;
};

static const struct bad_case bad_cases[] = {
	/* syntax */
	{ "version: 1\nrules:\n  - name: a\n   match: {}\n",
	  "policy.yaml:4:4: syntax error: did not find expected '-' indicator (while parsing a "
	  "block collection at line 3)" },
	{ "version: 1\nrules:\n\t- name: a\n",
	  "policy.yaml:3:1: syntax error: found character that cannot start any token (while "
	  "scanning for the next token at line 3)" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { attempts: 3\n",
	  "policy.yaml:5:1: syntax error: did not find expected ',' or '}' (while parsing a flow "
	  "mapping at line 4)" },
	{ "version: 1\n---\nversion: 1\n",
	  "policy.yaml:3:1: a policy is a single YAML document; remove this one or the '---' "
	  "before it" },
	{ "", "policy.yaml:1:1: empty policy; expected a mapping that starts with version: 1" },
	{ "# nothing but a comment\n",
	  "policy.yaml:1:1: empty policy; expected a mapping that starts with version: 1" },
	{ "version: 1\nrules: \xff\n",
	  "policy.yaml: cannot read as YAML: invalid leading UTF-8 octet at byte 18" },
	{ "version: 1\nrules:\n  - name: a\n    retry: &r { attempts: 2 }\n  - name: b\n"
	  "    retry:\n      <<: *r\n",
	  "policy.yaml:7:7: rules[1].retry: YAML merge keys (<<) are not supported; put shared "
	  "settings under defaults" },
	{ "version: 1\nrules:\n  - name: a\n    retry: *nowhere\n",
	  "policy.yaml:4:12: syntax error: found undefined alias" },
	/* top level */
	{ "- a\n- b\n", "policy.yaml:1:1: the policy: expected a mapping, got a list" },
	{ "version: 1\nrulez: []\n",
	  "policy.yaml:2:1: unknown key 'rulez'; expected one of version, mode, on_config_error, "
	  "seed, log, defaults, rules, state" },
	{ "rules: []\n", "policy.yaml:1:1: missing required key 'version'; add version: 1" },
	{ "version: 2\n", "policy.yaml:1:10: version: unsupported version 2; expected 1" },
	{ "version: 1\nmode: enforce\nmode: observe\n",
	  "policy.yaml:3:1: duplicate key 'mode' (first at line 2)" },
	{ "version: 1\nmode: dry-run\n",
	  "policy.yaml:2:7: mode: expected one of enforce, observe, got 'dry-run'" },
	{ "version: 1\non_config_error: crash\n",
	  "policy.yaml:2:18: on_config_error: expected one of passthrough, abort, got 'crash'" },
	{ "version: 1\nseed: -1\n",
	  "policy.yaml:2:7: seed: expected an integer from 0 to 18446744073709551615 (0: random), "
	  "got -1" },
	{ "version: 1\nseed: 18446744073709551616\n",
	  "policy.yaml:2:7: seed: expected an integer from 0 to 18446744073709551615 (0: random), "
	  "got 18446744073709551616" },
	{ "version: 1\nlog: { sink: kafka }\n",
	  "policy.yaml:2:14: log.sink: expected stderr, syslog or file:PATH, got 'kafka'" },
	{ "version: 1\nlog: { sink: \"file:\" }\n",
	  "policy.yaml:2:14: log.sink: file: needs a path, e.g. file:/var/log/bulwark.jsonl" },
	{ "version: 1\nlog: { level: verbose }\n",
	  "policy.yaml:2:15: log.level: expected one of error, warn, info, debug, got 'verbose'" },
	{ "version: 1\nlog: { syslog_facility: local8 }\n",
	  "policy.yaml:2:25: log.syslog_facility: expected one of user, daemon, local0, local1, "
	  "local2, local3, local4, local5, local6, local7, got 'local8'" },
	{ "version: 1\nlog: { summary: yes }\n",
	  "policy.yaml:2:17: log.summary: expected true or false, got 'yes'" },
	{ "version: 1\nlog: stderr\n", "policy.yaml:2:6: log: expected a mapping, got 'stderr'" },
	{ "version: 1\nstate: { dir: run/bw }\n",
	  "policy.yaml:2:15: state.dir: expected auto or an absolute path, got 'run/bw'" },
	{ "version: 1\nstate: { share: host }\n",
	  "policy.yaml:2:17: state.share: expected one of process, group, fleet, got 'host'" },
	{ "version: 1\nrules: { name: a }\n", "policy.yaml:2:8: rules: expected a list of rules" },
	{ "version: 1\nrules:\n  - connect\n",
	  "policy.yaml:3:5: rules[0]: expected a mapping, got 'connect'" },
	/* rule names */
	{ "version: 1\nrules:\n  - match: { ops: [connect] }\n",
	  "policy.yaml:3:5: rules[0]: missing required key 'name'" },
	{ "version: 1\nrules:\n  - name: db\n  - name: db\n",
	  "policy.yaml:4:11: rules[1].name: duplicate rule name 'db'; rules[0] at line 3 has it "
	  "already" },
	{ "version: 1\nrules:\n  - name: my db\n",
	  "policy.yaml:3:11: rules[0].name: invalid rule name 'my db'; use only letters, digits, "
	  "'_', '.' and '-'" },
	{ "version: 1\nrules:\n  - name: "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "policy.yaml:3:11: rules[0].name: rule name is longer than 63 characters" },
	{ "version: 1\nrules:\n  - name: \"\"\n",
	  "policy.yaml:3:11: rules[0].name: a rule name cannot be empty" },
	{ "version: 1\nrules:\n  - name:\n",
	  "policy.yaml:3:10: rules[0].name: expected a rule name, got nothing" },
	{ "version: 1\nrules:\n  - name: [a]\n",
	  "policy.yaml:3:11: rules[0].name: expected a rule name, got a list" },
	/* keys and types inside rules */
	{ "version: 1\nrules:\n  - name: db\n    match:\n      ops: [connect]\n    retry:\n"
	  "      attemps: 3\n",
	  "policy.yaml:7:7: rules[0].retry: unknown key 'attemps'; expected one of attempts, on, "
	  "backoff, deadline, budget" },
	{ "version: 1\nrules:\n  - name: db\n    retry: { attempts: 2, attempts: 3 }\n",
	  "policy.yaml:4:27: rules[0].retry: duplicate key 'attempts' (first at line 4)" },
	{ "version: 1\nrules:\n  - name: x\n    match: [connect]\n",
	  "policy.yaml:4:12: rules[0].match: expected a mapping, got a list" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [conect] }\n",
	  "policy.yaml:4:20: rules[0].match.ops[0]: expected one of connect, accept, send, recv, "
	  "resolve, sqlite, pg, mysql, redis, got 'conect'" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [] }\n",
	  "policy.yaml:4:19: rules[0].match.ops: expected at least one op" },
	{ "version: 1\nrules:\n  - name: x\n    match: { dest: [] }\n",
	  "policy.yaml:4:20: rules[0].match.dest: expected at least one destination" },
	{ "version: 1\nrules:\n  - name: x\n    match: { prog: [] }\n",
	  "policy.yaml:4:20: rules[0].match.prog: expected at least one program" },
	{ "version: 1\nrules:\n  - name: x\n    match: { cmd_hash: [] }\n",
	  "policy.yaml:4:24: rules[0].match.cmd_hash: expected at least one command-line hash" },
	{ "version: 1\nrules:\n  - name: x\n    match: { cmd_hash: [\"python3 x.py\"] }\n",
	  "policy.yaml:4:25: rules[0].match.cmd_hash[0]: expected a command-line hash of 16 hex "
	  "digits, as a start event's cmd_hash, got 'python3 x.py'" },
	{ "version: 1\nrules:\n  - name: x\n    match: { cmd_hash: [401801fc84f3ca7] }\n",
	  "policy.yaml:4:25: rules[0].match.cmd_hash[0]: expected a command-line hash of 16 hex "
	  "digits, as a start event's cmd_hash, got '401801fc84f3ca7'" },
	{ "version: 1\nrules:\n  - name: x\n    match: { dest: [\"db:99999\"] }\n",
	  "policy.yaml:4:21: rules[0].match.dest[0]: invalid port '99999'; expected 1 to 65535 "
	  "or *" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [connect], host: [\"*.internal\"] }\n",
	  "policy.yaml:4:5: rules[0].match: can never match: host applies only to resolve, and "
	  "the rule's ops are [connect]" },
	{ "version: 1\nrules:\n  - name: x\n    retry: fast\n",
	  "policy.yaml:4:12: rules[0].retry: expected one of quick, conservative, aggressive, off, "
	  "got 'fast'" },
	{ "version: 1\nrules:\n  - name: x\n    retry:\n",
	  "policy.yaml:4:11: rules[0].retry: expected a mapping or one of quick, conservative, "
	  "aggressive, off, got nothing" },
	{ "version: 1\nrules:\n  - name: x\n    inject: { delay: 1ms }\n",
	  "policy.yaml:4:13: rules[0].inject: expected a list of faults" },
	/* units and ranges */
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    timeout: { connect: 250 }\n",
	  "policy.yaml:5:25: rules[0].timeout.connect: duration needs a unit, e.g. 250ms" },
	{ "version: 1\nrules:\n  - name: db\n    timeout: { connect: 5sec }\n",
	  "policy.yaml:4:25: rules[0].timeout.connect: unknown duration unit 'sec' in '5sec'; "
	  "expected us, ms, s, m or h" },
	{ "version: 1\nrules:\n  - name: x\n    timeout: { connect: 0s }\n",
	  "policy.yaml:4:25: rules[0].timeout.connect: expected a duration greater than 0, got 0s" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { deadline: 1.5us }\n",
	  "policy.yaml:4:24: rules[0].retry.deadline: '1.5us' is not a whole number of "
	  "microseconds" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { deadline: -5s }\n",
	  "policy.yaml:4:24: rules[0].retry.deadline: a duration cannot be negative, got '-5s'" },
	{ "version: 1\nrules:\n  - name: db\n    retry: { attempts: 0 }\n",
	  "policy.yaml:4:24: rules[0].retry.attempts: expected an integer from 1 to 100, got 0" },
	{ "version: 1\nrules:\n  - name: db\n    retry: { attempts: 101 }\n",
	  "policy.yaml:4:24: rules[0].retry.attempts: expected an integer from 1 to 100, got 101" },
	{ "version: 1\nrules:\n  - name: db\n    retry: { attempts: three }\n",
	  "policy.yaml:4:24: rules[0].retry.attempts: expected an integer from 1 to 100, got "
	  "'three'" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { backoff: { multiplier: 0.5 } }\n",
	  "policy.yaml:4:37: rules[0].retry.backoff.multiplier: expected a number of at least 1, "
	  "got 0.5" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { backoff: { jitter: half } }\n",
	  "policy.yaml:4:33: rules[0].retry.backoff.jitter: expected one of none, full, equal, "
	  "decorrelated, got 'half'" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { backoff: { max: 50ms } }\n",
	  "policy.yaml:4:25: rules[0].retry.backoff.max: 50ms is less than retry.backoff.base "
	  "(100ms)" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { budget: { ratio: 0 } }\n",
	  "policy.yaml:4:31: rules[0].retry.budget.ratio: expected a ratio greater than 0, up to "
	  "100%, got 0" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { on: [] }\n",
	  "policy.yaml:4:18: rules[0].retry.on: expected 1 to 32 error names; to never retry, "
	  "write retry: off" },
	{ "version: 1\nrules:\n  - name: x\n    retry: { on: [ECONNREFUSE] }\n",
	  "policy.yaml:4:19: rules[0].retry.on[0]: unknown error name 'ECONNREFUSE'; expected an "
	  "errno name such as ECONNREFUSED, an EAI_* or a SQLITE_* name" },
	{ "version: 1\nrules:\n  - name: x\n    breaker: { open_for: 10m, open_for_max: 5m }\n",
	  "policy.yaml:4:31: rules[0].breaker.open_for_max: 5m is less than breaker.open_for "
	  "(10m)" },
	{ "version: 1\nrules:\n  - name: x\n    breaker: { trip: { rate: 0% } }\n",
	  "policy.yaml:4:30: rules[0].breaker.trip.rate: expected a ratio greater than 0, up to "
	  "100%, got 0%" },
	{ "version: 1\nrules:\n  - name: x\n    breaker: { trip: { consecutive: 0 } }\n",
	  "policy.yaml:4:37: rules[0].breaker.trip.consecutive: expected an integer from 1 to "
	  "10000, got 0" },
	{ "version: 1\nrules:\n  - name: x\n    breaker: { half_open_probes: 1001 }\n",
	  "policy.yaml:4:34: rules[0].breaker.half_open_probes: expected an integer from 1 to "
	  "1000, got 1001" },
	{ "version: 1\nrules:\n  - name: x\n    breaker: { scope: process }\n",
	  "policy.yaml:4:23: rules[0].breaker.scope: expected one of dest, rule, got 'process'" },
	{ "version: 1\nrules:\n  - name: x\n    rate_limit: { burst: 5 }\n",
	  "policy.yaml:4:5: rules[0].rate_limit: missing required key 'rate'" },
	{ "version: 1\nrules:\n  - name: x\n    rate_limit: { rate: 50 }\n",
	  "policy.yaml:4:25: rules[0].rate_limit.rate: rate needs a unit, e.g. 50/s or 1MiB/s" },
	{ "version: 1\nrules:\n  - name: x\n    rate_limit: { rate: 5/s, burst: 0.5 }\n",
	  "policy.yaml:4:37: rules[0].rate_limit.burst: expected a number of at least 1, got 0.5" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [send] }\n"
	  "    rate_limit: { rate: 1MiB/s, burst: 0.5B }\n",
	  "policy.yaml:5:40: rules[0].rate_limit.burst: expected a number of at least 1, got 0.5B" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [send] }\n"
	  "    rate_limit: { rate: 1MiB/s, burst: 64KiBs }\n",
	  "policy.yaml:5:40: rules[0].rate_limit.burst: unknown size unit 'KiBs' in '64KiBs'; "
	  "expected B, KB, KiB, MB, MiB, GB or GiB" },
	/* a size is a number of bytes: it means nothing to a bucket of calls */
	{ "version: 1\nrules:\n  - name: x\n    rate_limit: { rate: 5/s, burst: 64KiB }\n",
	  "policy.yaml:4:37: rules[0].rate_limit.burst: 64KiB is a size in bytes, but the rate "
	  "5/s counts calls; give the burst as a number of calls, such as 10" },
	{ "version: 1\nrules:\n  - name: x\n    rate_limit: { burst: 1KB, rate: 600/min }\n",
	  "policy.yaml:4:26: rules[0].rate_limit.burst: 1KB is a size in bytes, but the rate "
	  "10/s counts calls; give the burst as a number of calls, such as 10" },
	{ "version: 1\ndefaults:\n  rate_limit: { rate: 10/s }\nrules:\n  - name: x\n"
	  "    rate_limit: { burst: 1KiB }\n",
	  "policy.yaml:6:26: rules[0].rate_limit.burst: 1KiB is a size in bytes, but the rate "
	  "10/s counts calls; give the burst as a number of calls, such as 10" },
	{ "version: 1\ndefaults:\n  rate_limit: { rate: 10/s, burst: 2MB }\n",
	  "policy.yaml:3:36: defaults.rate_limit.burst: 2MB is a size in bytes, but the rate 10/s "
	  "counts calls; give the burst as a number of calls, such as 10" },
	{ "version: 1\nrules:\n  - name: x\n    inject: [ { delay: 1ms, probability: 1.5 } ]\n",
	  "policy.yaml:4:42: rules[0].inject[0].probability: expected a ratio from 0 to 1 or 0% "
	  "to 100%, got '1.5'" },
	{ "version: 1\nrules:\n  - name: x\n    max_keys: 0\n",
	  "policy.yaml:4:15: rules[0].max_keys: expected an integer from 1 to 1000000, got 0" },
	/* fallback and inject shapes */
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    fallback: [\"10.0.0.0/8:5432\"]\n",
	  "policy.yaml:5:16: rules[0].fallback[0]: a fallback must be one endpoint (host:port, "
	  "ip:port or unix:path, no glob or range), got '10.0.0.0/8:5432'" },
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    fallback: [\"*:5432\"]\n",
	  "policy.yaml:5:16: rules[0].fallback[0]: a fallback must be one endpoint (host:port, "
	  "ip:port or unix:path, no glob or range), got '*:5432'" },
	{ "version: 1\nrules:\n  - name: s\n    inject:\n      - { probability: 50% }\n",
	  "policy.yaml:5:9: rules[0].inject[0]: nothing to inject; give errno, delay, latency, "
	  "partial, eof, reset, limit_data, stall, slow_close, loss, duplicate or reorder" },
	{ "version: 1\nrules:\n  - name: x\n    inject: [ { errno: ECONNREFUSED, reset: true } ]\n",
	  "policy.yaml:4:15: rules[0].inject[0]: choose one of errno, partial, eof, reset, "
	  "limit_data, stall, slow_close, loss, duplicate and reorder (delay and latency may go "
	  "with any)" },
	/* the connection and datagram faults: which ops they fit, what goes with what */
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [send, recv] }\n"
	  "    inject: [ { stall: true, loss: true } ]\n",
	  "policy.yaml:5:15: rules[0].inject[0]: choose one of errno, partial, eof, reset, "
	  "limit_data, stall, slow_close, loss, duplicate and reorder (delay and latency may go "
	  "with any)" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [recv] }\n"
	  "    inject: [ { jitter: 20ms } ]\n",
	  "policy.yaml:5:17: rules[0].inject[0]: jitter goes with latency" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [recv] }\n"
	  "    inject: [ { latency: 1s, distribution: gauss } ]\n",
	  "policy.yaml:5:44: rules[0].inject[0].distribution: expected one of uniform, normal, "
	  "exponential, got 'gauss'" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [send, recv] }\n"
	  "    inject: [ { ops: [recv], duplicate: true } ]\n",
	  "policy.yaml:5:30: rules[0].inject[0].duplicate: duplicate applies only to send, but ops "
	  "include recv" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [connect] }\n"
	  "    inject: [ { stall: true } ]\n",
	  "policy.yaml:5:17: rules[0].inject[0].stall: does not apply: rule 'x' matches only "
	  "[connect]; stall applies only to send and recv" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [connect, send] }\n"
	  "    inject: [ { latency: 1s, per: connection, ops: [connect] } ]\n",
	  "policy.yaml:5:30: rules[0].inject[0].per: per applies only to send and recv, but ops "
	  "include connect" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [send, recv] }\n"
	  "    inject: [ { ops: [send], slow_close: 1s } ]\n",
	  "policy.yaml:5:30: rules[0].inject[0].slow_close: slow_close applies only to recv, but "
	  "ops include send" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [recv] }\n"
	  "    inject: [ { limit_data: 0 } ]\n",
	  "policy.yaml:5:29: rules[0].inject[0].limit_data: expected an integer from 1 to "
	  "2147483647, got 0" },
	/* what applies to which op (bulwark.yaml(5), "What applies to which op") */
	{ "version: 1\nrules:\n  - name: api\n    match: { ops: [connect] }\n"
	  "    timeout: { connect: 1s, recv: 5s }\n",
	  "policy.yaml:5:29: rules[0].timeout.recv: does not apply: rule 'api' matches only "
	  "[connect]" },
	{ "version: 1\nrules:\n  - name: up\n    match: { ops: [send] }\n"
	  "    timeout: { connect: 1s }\n",
	  "policy.yaml:5:16: rules[0].timeout.connect: does not apply: rule 'up' matches only "
	  "[send]" },
	{ "version: 1\nrules:\n  - name: dn\n    match: { ops: [recv] }\n"
	  "    timeout: { send: 1s }\n",
	  "policy.yaml:5:16: rules[0].timeout.send: does not apply: rule 'dn' matches only "
	  "[recv]" },
	{ "version: 1\nrules:\n  - name: acc\n    match: { ops: [accept] }\n"
	  "    breaker: { open_for: 5s }\n",
	  "policy.yaml:5:5: rules[0].breaker: does not apply: rule 'acc' matches only [accept]; "
	  "a breaker needs connect, send, recv, resolve or sqlite" },
	{ "version: 1\nrules:\n  - name: dns\n    match: { ops: [resolve] }\n"
	  "    fallback: [\"10.0.0.2:53\"]\n",
	  "policy.yaml:5:5: rules[0].fallback: does not apply: rule 'dns' matches only [resolve]; "
	  "fallback needs connect" },
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    rate_limit: { rate: 1MiB/s }\n",
	  "policy.yaml:5:25: rules[0].rate_limit.rate: a byte rate applies only to send and recv, "
	  "but rule 'db' matches [connect]; use a call rate such as 50/s" },
	{ "version: 1\nrules:\n  - name: stream\n    match: { ops: [send, recv] }\n"
	  "    rate_limit: { rate: 1MiB/s, on_limit: fail }\n",
	  "policy.yaml:5:43: rules[0].rate_limit.on_limit: fail is refused for send, recv: a "
	  "made-up EAGAIN on a ready descriptor stalls edge-triggered event loops; use wait" },
	{ "version: 1\nrules:\n  - name: x\n    match: { ops: [accept] }\n"
	  "    rate_limit: { rate: 5/s, on_limit: fail }\n",
	  "policy.yaml:5:40: rules[0].rate_limit.on_limit: fail is refused for accept: a made-up "
	  "EAGAIN on a ready descriptor stalls edge-triggered event loops; use wait" },
	{ "version: 1\nrules:\n  - name: stream\n    match: { ops: [send, recv] }\n"
	  "    retry: { on: [EINTR, ECONNRESET] }\n",
	  "policy.yaml:5:26: rules[0].retry.on[1]: ECONNRESET cannot be retried on send or recv: "
	  "the connection is gone; retrying would lose or duplicate bytes" },
	{ "version: 1\nrules:\n  - name: any\n    retry: { on: EPIPE }\n",
	  "policy.yaml:4:18: rules[0].retry.on: EPIPE cannot be retried on send or recv: the "
	  "connection is gone; retrying would lose or duplicate bytes" },
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    retry: { on: [EAI_AGAIN] }\n",
	  "policy.yaml:5:19: rules[0].retry.on[0]: EAI_AGAIN does not apply: rule 'db' matches "
	  "only [connect]; EAI_* names apply only to resolve" },
	{ "version: 1\nrules:\n  - name: lite\n    match: { ops: [sqlite] }\n"
	  "    retry: { on: [ECONNREFUSED] }\n",
	  "policy.yaml:5:19: rules[0].retry.on[0]: ECONNREFUSED does not apply: rule 'lite' "
	  "matches only [sqlite]; errno names apply to connect, accept, send, recv and redis" },
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    breaker: { errno: SQLITE_BUSY }\n",
	  "policy.yaml:5:23: rules[0].breaker.errno: SQLITE_BUSY does not apply: rule 'db' "
	  "matches only [connect]; SQLITE_* names apply only to sqlite" },
	{ "version: 1\nrules:\n  - name: db\n    match: { ops: [connect] }\n"
	  "    inject:\n      - partial: true\n",
	  "policy.yaml:6:9: rules[0].inject[0].partial: does not apply: rule 'db' matches only "
	  "[connect]; partial and reset apply only to send and recv" },
	{ "version: 1\nrules:\n  - name: s\n    match: { ops: [send, recv] }\n"
	  "    inject:\n      - { ops: [send, recv], eof: true }\n",
	  "policy.yaml:6:30: rules[0].inject[0].eof: eof applies only to recv, but ops include "
	  "send" },
	{ "version: 1\nrules:\n  - name: s\n    match: { ops: [connect, resolve] }\n"
	  "    inject:\n      - { ops: [connect, resolve], errno: EAI_AGAIN }\n",
	  "policy.yaml:6:36: rules[0].inject[0].errno: EAI_* names apply only to resolve, but ops "
	  "include connect" },
	{ "version: 1\nrules:\n  - name: s\n    match: { ops: [send] }\n"
	  "    inject:\n      - { ops: [recv], delay: 5ms }\n",
	  "policy.yaml:6:16: rules[0].inject[0].ops: inject ops must be among the rule's ops "
	  "[send]" },
	{ "version: 1\nrules:\n  - name: dns\n    match: { ops: [resolve] }\n"
	  "    nonblocking: observe\n",
	  "policy.yaml:5:5: rules[0].nonblocking: does not apply: rule 'dns' matches only "
	  "[resolve]; it is about non-blocking connects" },
	/* concurrency, throttle and trip.slow: what they apply to, what they need */
	{ "version: 1\nrules:\n  - name: io\n    match: { ops: [send, recv] }\n"
	  "    concurrency: { max: 3 }\n",
	  "policy.yaml:5:5: rules[0].concurrency: does not apply: rule 'io' matches only "
	  "[send, recv]; concurrency counts the connections or calls of connect, accept, "
	  "resolve, sqlite and pg" },
	{ "version: 1\nrules:\n  - name: in\n    match: { ops: [accept] }\n"
	  "    throttle: {}\n",
	  "policy.yaml:5:5: rules[0].throttle: does not apply: rule 'in' matches only "
	  "[accept]; throttling rejects calls, which only these ops can be: connect, resolve, "
	  "sqlite and pg" },
	{ "version: 1\nrules:\n  - name: io\n    match: { ops: [send, recv] }\n"
	  "    breaker: { trip: { slow: { over: 1s } } }\n",
	  "policy.yaml:5:24: rules[0].breaker.trip.slow: does not apply: rule 'io' matches only "
	  "[send, recv]; slow calls are timed for connect, resolve, sqlite and pg" },
	{ "version: 1\nrules:\n  - name: db\n    concurrency: { max_wait: 1s }\n",
	  "policy.yaml:4:5: rules[0].concurrency: missing required key 'max'" },
	{ "version: 1\nrules:\n  - name: db\n    concurrency: { max: 0 }\n",
	  "policy.yaml:4:25: rules[0].concurrency.max: expected an integer from 1 to 1000000, "
	  "got 0" },
	{ "version: 1\nrules:\n  - name: db\n    breaker: { trip: { slow: { rate: 50% } } }\n",
	  "policy.yaml:4:24: rules[0].breaker.trip.slow: missing required key 'over'" },
	{ "version: 1\nrules:\n  - name: db\n    throttle: { k: 0.5 }\n",
	  "policy.yaml:4:20: rules[0].throttle.k: expected a number of at least 1, got 0.5" },
	{ "version: 1\nrules:\n  - name: db\n    throttle: { max_reject: 0% }\n",
	  "policy.yaml:4:29: rules[0].throttle.max_reject: expected a ratio greater than 0, up "
	  "to 100%, got 0%" },
	{ "version: 1\nrules:\n  - name: db\n    throttle: { scope: process }\n",
	  "policy.yaml:4:24: rules[0].throttle.scope: expected one of dest, rule, got 'process'" },
	/* "\0" is valid YAML, but would cut the name short without a word */
	{ "version: 1\nrules:\n  - name: \"db\\0x\"\n",
	  "policy.yaml:3:11: a value may not contain a NUL character (\\0)" },
	/* defaults */
	{ "version: 1\ndefaults:\n  name: foo\n",
	  "policy.yaml:3:3: defaults: unknown key 'name'; expected one of retry, timeout, breaker, "
	  "rate_limit, concurrency, throttle, fallback, inject, nonblocking, max_keys, idempotent" },
	{ "version: 1\ndefaults:\n  idempotent: [GET]\n",
	  "policy.yaml:3:3: defaults.idempotent: belongs in a rule: it names that rule's "
	  "statements or commands" },
	{ "version: 1\nrules:\n  - name: p\n    match: { ops: [pg, connect] }\n"
	  "    idempotent: [SELECT]\n",
	  "policy.yaml:5:5: rules[0].idempotent: does not apply: rule 'p' matches only [connect, "
	  "pg]; idempotent applies only to mysql and redis" },
	{ "version: 1\nrules:\n  - name: r\n    match: { ops: [redis] }\n    idempotent: []\n",
	  "policy.yaml:5:17: rules[0].idempotent: expected at least one statement or command" },
	{ "version: 1\nrules:\n  - name: r\n    match: { ops: [redis] }\n    idempotent: [\"\"]\n",
	  "policy.yaml:5:17: rules[0].idempotent[0]: an empty entry would name every statement" },
	{ "version: 1\ndefaults:\n  retry: { backoff: { base: 10s, max: 1s } }\n",
	  "policy.yaml:3:34: defaults.retry.backoff.max: 1s is less than retry.backoff.base "
	  "(10s)" },
	{ "version: 1\ndefaults:\n  retry: { backoff: { max: 10s } }\nrules:\n  - name: a\n"
	  "    retry: { backoff: { base: 20s } }\n",
	  "policy.yaml:6:25: rules[0].retry.backoff.base: 20s is more than retry.backoff.max "
	  "(10s)" },
};

static void test_bad(void **state)
{
	const struct bad_case *c = *state;
	struct bw_diags dg;
	char line[600];
	struct bw_config *cfg = load(c->yaml, &dg);
	assert_null(cfg);
	assert_true(dg.n >= 1);
	bw_diag_format(&dg.d[0], line, sizeof line);
	if (strcmp(line, c->want) != 0)
		print_error("policy:\n%s\n", c->yaml);
	assert_string_equal(line, c->want);
}

static void test_every_problem_is_reported(void **state)
{
	const char *yaml = "version: 1\nmode: loud\nrules:\n  - name: a\n"
			   "    retry: { attempts: 0, backoff: { base: 1 } }\n"
			   "    max_keys: -1\n";
	const char *want[] = {
		"policy.yaml:2:7: mode: expected one of enforce, observe, got 'loud'",
		"policy.yaml:5:24: rules[0].retry.attempts: expected an integer from 1 to 100, got 0",
		"policy.yaml:5:44: rules[0].retry.backoff.base: duration needs a unit, e.g. 250ms",
		"policy.yaml:6:15: rules[0].max_keys: expected an integer from 1 to 1000000, got -1",
	};
	struct bw_diags dg;
	char line[600];
	(void)state;
	assert_null(load(yaml, &dg));
	assert_int_equal(dg.n, 4);
	for (int i = 0; i < 4; i++) {
		bw_diag_format(&dg.d[i], line, sizeof line);
		assert_string_equal(line, want[i]);
	}
}

static void test_diags_are_capped_but_counted(void **state)
{
	char yaml[8192];
	size_t o = (size_t)snprintf(yaml, sizeof yaml, "version: 1\nrules:\n");
	struct bw_diags dg;
	(void)state;
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(yaml + o, sizeof yaml - o, "  - name: r%d\n    max_keys: 0\n", i);
	assert_null(load(yaml, &dg));
	assert_int_equal(dg.n, 40);
	assert_int_equal(dg.d[BW_MAX_DIAGS - 1].line, 2 + 2 * BW_MAX_DIAGS);
}

static void test_diag_format_without_position(void **state)
{
	struct bw_diag d = { .file = "p.yaml", .line = 0, .col = 0, .msg = "cannot open" };
	char buf[300];
	(void)state;
	bw_diag_format(&d, buf, sizeof buf);
	assert_string_equal(buf, "p.yaml: cannot open");
}

/* ---- bounds on what a policy may cost ---- */

static char *text_of(size_t cap)
{
	char *t = malloc(cap);
	assert_non_null(t);
	return t;
}

static void first_diag_is(const char *yaml, size_t len, const char *want)
{
	struct bw_diags dg;
	char line[600];
	memset(&dg, 0, sizeof dg);
	assert_null(bw_config_load_string("policy.yaml", yaml, len, &dg));
	assert_true(dg.n >= 1);
	bw_diag_format(&dg.d[0], line, sizeof line);
	assert_string_equal(line, want);
}

/* Nesting: libyaml's scanner spends time in proportion to the depth on every token. */
static void test_limit_depth(void **state)
{
	char *t = text_of(1024), want[200];
	(void)state;
	/* 64 levels load (this one is wrong for other reasons); the 65th is refused */
	size_t o = (size_t)sprintf(t, "version: 1\njunk: ");
	for (int i = 0; i < 63; i++)
		t[o++] = '[';
	t[o] = '\0';
	strcat(t, "1");
	for (int i = 0; i < 63; i++)
		strcat(t, "]");
	first_diag_is(t, strlen(t), "policy.yaml:2:1: unknown key 'junk'; expected one of "
		      "version, mode, on_config_error, seed, log, defaults, rules, state");
	o = (size_t)sprintf(t, "version: 1\njunk: ");
	for (int i = 0; i < 64; i++)
		t[o++] = '[';
	t[o] = '\0';
	snprintf(want, sizeof want, "policy.yaml:2:%d: more than 64 levels of nested lists and "
		 "mappings; a policy needs a handful", 7 + 63);
	first_diag_is(t, o, want);
	free(t);
}

/* Nodes as written: 12 around a list of n names. */
static char *prog_list(int n, size_t *len)
{
	char *t = text_of((size_t)n * 8 + 200);
	size_t o = (size_t)sprintf(t, "version: 1\nrules:\n  - name: a\n    match:\n      prog: [");
	for (int i = 0; i < n; i++)
		o += (size_t)sprintf(t + o, "%sp%d", i ? "," : "", i);
	o += (size_t)sprintf(t + o, "]\n");
	*len = o;
	return t;
}

static void test_limit_nodes(void **state)
{
	size_t len;
	char want[200];
	struct bw_diags dg;
	(void)state;
	char *t = prog_list(BW_POLICY_MAX_NODES - 12, &len);
	memset(&dg, 0, sizeof dg);
	struct bw_config *cfg = bw_config_load_string("policy.yaml", t, len, &dg);
	assert_non_null(cfg);
	assert_int_equal(cfg->rules[0].match.n_prog, BW_POLICY_MAX_NODES - 12);
	bw_config_free(cfg);
	free(t);

	t = prog_list(BW_POLICY_MAX_NODES - 11, &len);
	/* at the last name, the one too many */
	const char *line = strstr(t, "      prog: ["), *last = strrchr(t, ',') + 1;
	snprintf(want, sizeof want, "policy.yaml:5:%d: more than 50000 values, lists and mappings "
		 "in all; a policy needs a few hundred", (int)(last - line) + 1);
	first_diag_is(t, len, want);
	free(t);
}

/* An alias is walked, and what it names copied, at every use. */
static void test_limit_aliases(void **state)
{
	(void)state;
	/* a match of 20 nodes (mapping, 2 keys, 2 lists, 15 names) used 2500 times is 50000 */
	char *t = text_of(200000);
	size_t o = (size_t)sprintf(t, "version: 1\nrules:\n  - name: r0\n"
				   "    match: &m { ops: [connect], dest: [a:1, b:1, c:1, d:1, e:1, "
				   "f:1, g:1, h:1, i:1, j:1, k:1, l:1, m:1, n:1] }\n");
	for (int i = 1; i <= 2500; i++)
		o += (size_t)sprintf(t + o, "  - { name: r%d, match: *m }\n", i);
	struct bw_diags dg;
	memset(&dg, 0, sizeof dg);
	struct bw_config *cfg = bw_config_load_string("policy.yaml", t, o, &dg);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_rules, 2501);
	assert_int_equal(cfg->rules[2500].match.n_dest, 14);
	bw_config_free(cfg);
	o += (size_t)sprintf(t + o, "  - { name: one-too-many, match: *m }\n");
	first_diag_is(t, o, "policy.yaml:2505:34: aliases stand for more than 50000 values, lists "
		      "and mappings in all (each use counts all the alias names)");

	/* an alias inside what it names would be a loop */
	const char *loop = "version: 1\nrules:\n  - &r { name: a, match: { prog: [*r] } }\n";
	first_diag_is(loop, strlen(loop), "policy.yaml:3:35: alias *r is inside the node it names");
	const char *twice = "version: 1\nrules:\n  - { name: &n a, match: { prog: [&n b] } }\n";
	first_diag_is(twice, strlen(twice), "policy.yaml:3:35: anchor &n is defined twice (first "
		      "at line 3, column 13)");
	free(t);
}

/* Each rule copies the fallbacks and faults it inherits from defaults. */
static void test_limit_inherited(void **state)
{
	(void)state;
	char *t = text_of(100000);
	size_t o = (size_t)sprintf(t, "version: 1\ndefaults:\n  fallback: [");
	for (int i = 0; i < 50; i++)
		o += (size_t)sprintf(t + o, "%s\"127.0.0.1:%d\"", i ? ", " : "", 1000 + i);
	o += (size_t)sprintf(t + o, "]\nrules:\n");
	for (int i = 0; i < 1000; i++)
		o += (size_t)sprintf(t + o, "  - { name: r%d, match: { ops: [connect] } }\n", i);
	struct bw_diags dg;
	memset(&dg, 0, sizeof dg);
	struct bw_config *cfg = bw_config_load_string("policy.yaml", t, o, &dg);
	assert_non_null(cfg);
	assert_int_equal(cfg->rules[999].n_fallback, 50);
	bw_config_free(cfg);
	o += (size_t)sprintf(t + o, "  - { name: more, match: { ops: [connect] } }\n");
	first_diag_is(t, o, "policy.yaml:1005:5: rules[1000]: rules inherit more than 50000 "
		      "fallback and inject entries from defaults in all (each rule gets a copy)");
	free(t);
}

static void test_limit_size(void **state)
{
	(void)state;
	size_t n = BW_POLICY_MAX_BYTES + 1;
	char *t = text_of(n);
	memset(t, ' ', n);
	memcpy(t, "version: 1\n#", 12);
	first_diag_is(t, n, "policy.yaml: larger than 1 MiB, the most a policy may be");
	struct bw_diags dg;
	memset(&dg, 0, sizeof dg);
	struct bw_config *cfg = bw_config_load_string("policy.yaml", t, n - 1, &dg);
	assert_non_null(cfg);
	bw_config_free(cfg);
	free(t);
}

/* A longer state.dir was cut short where the state paths are built: another directory. */
/* More rules than a socket's entry can number is an error, not a wrong rule. */
static void test_rule_count_limit(void **state)
{
	(void)state;
	size_t cap = (size_t)(BW_POLICY_MAX_RULES + 1) * 64 + 64;
	char *yaml = malloc(cap);
	assert_non_null(yaml);
	size_t o = (size_t)sprintf(yaml, "version: 1\nrules:\n");
	for (int i = 0; i <= BW_POLICY_MAX_RULES; i++)
		o += (size_t)sprintf(yaml + o, "  - { name: r%d, match: { ops: [connect] } }\n", i);
	char want[128];
	snprintf(want, sizeof want, "policy.yaml:3:3: rules: at most %d rules, got %d",
		 BW_POLICY_MAX_RULES, BW_POLICY_MAX_RULES + 1);
	first_diag_is(yaml, o, want);
	free(yaml);
}

static void test_state_dir_length(void **state)
{
	static char yaml[BW_STATE_DIR_MAX + 200];
	char want[200];
	(void)state;
	size_t o = (size_t)sprintf(yaml, "version: 1\nstate: { dir: /");
	memset(yaml + o, 'd', BW_STATE_DIR_MAX - 1);
	o += BW_STATE_DIR_MAX - 1;
	strcpy(yaml + o, " }\n");
	struct bw_config *cfg = load_ok(yaml);
	assert_int_equal(strlen(cfg->state.dir), BW_STATE_DIR_MAX);
	bw_config_free(cfg);
	o = (size_t)sprintf(yaml, "version: 1\nstate: { dir: /");
	memset(yaml + o, 'd', BW_STATE_DIR_MAX);
	strcpy(yaml + o + BW_STATE_DIR_MAX, " }\n");
	snprintf(want, sizeof want, "policy.yaml:2:15: state.dir: longer than %d characters (%d)",
		 BW_STATE_DIR_MAX, BW_STATE_DIR_MAX + 1);
	first_diag_is(yaml, strlen(yaml), want);
}

/* ---- valid policies ---- */

static const char full_policy[] =
	"version: 1\n"
	"mode: observe\n"
	"on_config_error: abort\n"
	"seed: 18446744073709551615\n"
	"log:\n"
	"  sink: file:/var/log/bw.jsonl\n"
	"  level: debug\n"
	"  syslog_facility: local3\n"
	"  summary: false\n"
	"state: { share: group, dir: /run/bw }\n"
	"rules:\n"
	"  - name: db\n"
	"    match:\n"
	"      ops: [connect, send, recv]\n"
	"      dest: [\"db.internal:5432\", 10.0.0.0/8, \"[::1]:6379\", \"*:443\", "
	"\"unix:/run/app/*.sock\"]\n"
	"      prog: [psql, \"python3*\"]\n"
	"    retry:\n"
	"      attempts: 4\n"
	"      on: [ECONNREFUSED, EHOSTUNREACH, EWOULDBLOCK]\n"
	"      backoff: { base: 50ms, max: 2s, multiplier: 1.5, jitter: decorrelated }\n"
	"      deadline: 30s\n"
	"      budget: { ratio: 10%, min_per_sec: 2 }\n"
	"    timeout: { connect: 5s, recv: 30s, send: 1m }\n"
	"    breaker:\n"
	"      scope: rule\n"
	"      trip: { consecutive: 3, rate: 50%, window: 1m, min_calls: 10 }\n"
	"      open_for: 2s\n"
	"      open_for_max: 1h\n"
	"      half_open_probes: 3\n"
	"      errno: EHOSTUNREACH\n"
	"    rate_limit: { scope: process, rate: 600/min, burst: 20, max_wait: 250ms }\n"
	"    fallback: [\"127.0.0.1:5433\", \"db-replica.internal:5432\", \"unix:/run/db.sock\"]\n"
	"    inject:\n"
	"      - { ops: [connect], errno: ECONNREFUSED, probability: 20%, after: 2, count: 3 }\n"
	"      - { ops: [recv], delay: 200ms }\n"
	"      - { ops: [send], partial: true }\n"
	"      - { ops: [recv], eof: true }\n"
	"      - { ops: [send, recv], reset: true, probability: 0.5 }\n"
	"    nonblocking: observe\n"
	"    max_keys: 100\n"
	"  - name: dns\n"
	"    match: { ops: resolve, host: \"*.internal\" }\n"
	"    retry: { on: EAI_AGAIN }\n"
	"    rate_limit: { rate: 10/s, on_limit: fail, errno: EAI_AGAIN }\n"
	"  - name: lite\n"
	"    match: { ops: [sqlite], db: [\"*/app.db\"] }\n"
	"    retry: { on: [SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT] }\n"
	"    inject: [ { errno: SQLITE_IOERR_READ } ]\n"
	"  - name: bytes\n"
	"    match: { ops: [send, recv] }\n"
	"    rate_limit: { rate: 1MiB/s }\n";

static void test_full_policy(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok(full_policy);
	assert_int_equal(cfg->version, 1);
	assert_int_equal(cfg->mode, BW_MODE_OBSERVE);
	assert_int_equal(cfg->on_config_error, BW_ONERR_ABORT);
	assert_true(cfg->seed == UINT64_MAX);
	assert_int_equal(cfg->log.sink, BW_SINK_FILE);
	assert_string_equal(cfg->log.path, "/var/log/bw.jsonl");
	assert_int_equal(cfg->log.level, BW_LVL_DEBUG);
	assert_int_equal(cfg->log.facility, LOG_LOCAL3);
	assert_int_equal(cfg->log.summary, 0);
	assert_int_equal(cfg->state.share, BW_SHARE_GROUP);
	assert_string_equal(cfg->state.dir, "/run/bw");
	assert_int_equal(cfg->n_rules, 4);
	assert_int_equal(cfg->ops, BW_OPS_ALL & ~(OP(ACCEPT) | OP(PG) | OP(MYSQL) | OP(REDIS)));

	const struct bw_rule *r = rule(cfg, "db");
	assert_int_equal(r->line, 12);
	assert_int_equal(r->match.ops, OP(CONNECT) | OP(SEND) | OP(RECV));
	assert_int_equal(r->match.n_dest, 5);
	assert_int_equal(r->match.dest[0].kind, BW_DEST_HOST);
	assert_int_equal(r->match.dest[1].kind, BW_DEST_ADDR);
	assert_int_equal(r->match.dest[3].kind, BW_DEST_ANYADDR);
	assert_int_equal(r->match.dest[4].kind, BW_DEST_UNIX);
	assert_int_equal(r->match.n_prog, 2);
	assert_string_equal(r->match.prog[1], "python3*");
	assert_true(r->has_retry);
	assert_int_equal(r->retry.attempts, 4);
	assert_int_equal(r->retry.n_on, 3);
	assert_int_equal(r->retry.on[2], EAGAIN);
	assert_int_equal(r->retry.base, 50 * MS);
	assert_int_equal(r->retry.max, 2 * SEC);
	assert_true(r->retry.multiplier == 1.5);
	assert_int_equal(r->retry.jitter, BW_JITTER_DECORRELATED);
	assert_int_equal(r->retry.deadline, 30 * SEC);
	assert_true(r->retry.budget_ratio == 0.1);
	assert_int_equal(r->retry.budget_min_per_sec, 2);
	assert_int_equal(r->timeout.connect, 5 * SEC);
	assert_int_equal(r->timeout.recv, 30 * SEC);
	assert_int_equal(r->timeout.send, 60 * SEC);
	assert_true(r->breaker.enabled);
	assert_int_equal(r->breaker.scope, BW_SCOPE_RULE);
	assert_int_equal(r->breaker.consecutive, 3);
	assert_true(r->breaker.rate == 0.5);
	assert_int_equal(r->breaker.window, 60 * SEC);
	assert_int_equal(r->breaker.min_calls, 10);
	assert_int_equal(r->breaker.open_for, 2 * SEC);
	assert_int_equal(r->breaker.open_for_max, 3600 * SEC);
	assert_int_equal(r->breaker.half_open_probes, 3);
	assert_int_equal(r->breaker.err, EHOSTUNREACH);
	assert_true(r->rate_limit.enabled);
	assert_int_equal(r->rate_limit.scope, BW_SCOPE_PROCESS);
	assert_true(r->rate_limit.rate == 10);
	assert_int_equal(r->rate_limit.bytes, 0);
	assert_true(r->rate_limit.burst == 20);
	assert_int_equal(r->rate_limit.on_limit, BW_LIMIT_WAIT);
	assert_int_equal(r->rate_limit.max_wait, 250 * MS);
	assert_int_equal(r->rate_limit.err, 0);
	assert_int_equal(r->n_fallback, 3);
	assert_string_equal(r->fallback[1].text, "db-replica.internal:5432");
	assert_int_equal(r->n_inject, 5);
	assert_int_equal(r->inject[0].ops, OP(CONNECT));
	assert_int_equal(r->inject[0].err, ECONNREFUSED);
	assert_true(r->inject[0].probability == 0.2);
	assert_int_equal(r->inject[0].after, 2);
	assert_int_equal(r->inject[0].count, 3);
	assert_int_equal(r->inject[1].delay, 200 * MS);
	assert_int_equal(r->inject[1].count, -1);
	assert_true(r->inject[1].probability == 1);
	assert_true(r->inject[2].partial);
	assert_true(r->inject[3].eof);
	assert_true(r->inject[4].reset);
	assert_int_equal(r->nonblocking, BW_NB_OBSERVE);
	assert_int_equal(r->max_keys, 100);

	r = rule(cfg, "dns");
	assert_int_equal(r->match.ops, OP(RESOLVE));
	assert_string_equal(r->match.host[0], "*.internal");
	assert_int_equal(r->retry.on[0], bw_err_parse("EAI_AGAIN"));
	assert_int_equal(r->rate_limit.on_limit, BW_LIMIT_FAIL);
	assert_int_equal(r->rate_limit.err, bw_err_parse("EAI_AGAIN"));
	assert_true(r->rate_limit.burst == 10);   /* one second's worth */
	assert_false(r->breaker.enabled);
	assert_int_equal(r->max_keys, 4096);

	r = rule(cfg, "lite");
	assert_int_equal(r->retry.on[1], bw_err_sqlite(5 | 2 << 8));
	assert_int_equal(r->inject[0].ops, OP(SQLITE));   /* the rule's ops */

	r = rule(cfg, "bytes");
	assert_int_equal(r->rate_limit.bytes, 1);
	assert_true(r->rate_limit.rate == 1048576);
	assert_true(r->rate_limit.burst == 1048576);
	assert_false(r->has_retry);
	bw_config_free(cfg);
}

static void test_top_level_defaults(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\n");
	assert_int_equal(cfg->mode, BW_MODE_ENFORCE);
	assert_int_equal(cfg->on_config_error, BW_ONERR_PASSTHROUGH);
	assert_true(cfg->seed == 0);
	assert_int_equal(cfg->log.sink, BW_SINK_STDERR);
	assert_null(cfg->log.path);
	/* no level given: stderr gets only what changes the program's behaviour */
	assert_int_equal(cfg->log.level, BW_LVL_WARN);
	assert_int_equal(cfg->log.level_given, 0);
	assert_int_equal(cfg->log.facility, LOG_USER);
	assert_int_equal(cfg->log.summary, 1);
	assert_int_equal(cfg->state.share, BW_SHARE_PROCESS);
	assert_null(cfg->state.dir);
	assert_int_equal(cfg->n_rules, 0);
	assert_int_equal(cfg->ops, 0);
	assert_string_equal(cfg->path, "policy.yaml");
	bw_config_free(cfg);

	cfg = load_ok("version: 1\nrules: []\nstate: { dir: auto }\nlog: { sink: syslog }\n");
	assert_int_equal(cfg->n_rules, 0);
	assert_null(cfg->state.dir);
	assert_int_equal(cfg->log.sink, BW_SINK_SYSLOG);
	assert_int_equal(cfg->log.level, BW_LVL_INFO);   /* a file or syslog gets the detail */
	bw_config_free(cfg);
}

/* A log without a level: warn on stderr, info in a file or syslog, also when the sink
 * comes from BULWARK_LOG or -o; a level given in the file or by BULWARK_LEVEL stays. */
static void test_level_follows_the_sink(void **state)
{
	(void)state;
	char err[160];
	struct bw_config *cfg = load_ok("version: 1\nlog: { sink: \"file:/tmp/x.log\" }\n");
	assert_int_equal(cfg->log.level, BW_LVL_INFO);
	assert_int_equal(bw_override_log(cfg, "stderr", err, sizeof err), 0);
	assert_int_equal(cfg->log.level, BW_LVL_WARN);
	assert_int_equal(bw_override_log(cfg, "syslog", err, sizeof err), 0);
	assert_int_equal(cfg->log.level, BW_LVL_INFO);
	assert_int_equal(bw_override_level(cfg, "error", err, sizeof err), 0);
	assert_int_equal(bw_override_log(cfg, "stderr", err, sizeof err), 0);
	assert_int_equal(cfg->log.level, BW_LVL_ERROR);
	bw_config_free(cfg);

	cfg = load_ok("version: 1\nlog: { level: info }\n");
	assert_int_equal(cfg->log.level, BW_LVL_INFO);   /* stderr, but asked for */
	assert_int_equal(bw_override_log(cfg, "file:/tmp/x.log", err, sizeof err), 0);
	assert_int_equal(cfg->log.level, BW_LVL_INFO);
	bw_config_free(cfg);

	cfg = bw_config_default();
	assert_int_equal(cfg->log.level, BW_LVL_WARN);
	assert_int_equal(bw_override_log(cfg, "file:/tmp/x.log", err, sizeof err), 0);
	assert_int_equal(cfg->log.level, BW_LVL_INFO);
	bw_config_free(cfg);
}

static void test_section_defaults(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\nrules:\n  - name: a\n"
					"    retry: {}\n    breaker: {}\n"
					"    rate_limit: { rate: 0.5/s }\n"
					"    inject: [ { delay: 1ms } ]\n");
	const struct bw_rule *r = &cfg->rules[0];
	assert_int_equal(r->match.ops, BW_OPS_ALL);
	assert_true(r->has_retry);
	assert_int_equal(r->retry.attempts, 3);
	assert_int_equal(r->retry.n_on, 0);
	assert_int_equal(r->retry.base, 100 * MS);
	assert_int_equal(r->retry.max, 5 * SEC);
	assert_true(r->retry.multiplier == 2);
	assert_int_equal(r->retry.jitter, BW_JITTER_FULL);
	assert_int_equal(r->retry.deadline, 0);
	assert_true(r->retry.budget_ratio == 0);
	assert_int_equal(r->breaker.scope, BW_SCOPE_DEST);
	assert_int_equal(r->breaker.consecutive, 5);
	assert_true(r->breaker.rate == 0);
	assert_int_equal(r->breaker.window, 30 * SEC);
	assert_int_equal(r->breaker.min_calls, 20);
	assert_int_equal(r->breaker.open_for, 10 * SEC);
	assert_int_equal(r->breaker.open_for_max, 300 * SEC);
	assert_int_equal(r->breaker.half_open_probes, 1);
	assert_int_equal(r->breaker.err, 0);
	assert_int_equal(r->rate_limit.scope, BW_SCOPE_DEST);
	assert_true(r->rate_limit.burst == 1);
	assert_int_equal(r->rate_limit.on_limit, BW_LIMIT_WAIT);
	assert_int_equal(r->rate_limit.max_wait, 1 * SEC);
	assert_int_equal(r->inject[0].ops, BW_OPS_ALL);
	assert_int_equal(r->nonblocking, BW_NB_RETRY);
	assert_int_equal(r->max_keys, 4096);
	bw_config_free(cfg);

	/* a rate trip alone does not add a consecutive one; a budget gets its defaults */
	cfg = load_ok("version: 1\nrules:\n  - name: a\n    breaker: { trip: { rate: 25% }, "
		      "open_for: 10m }\n    retry: { budget: {}, backoff: { base: 8s } }\n");
	r = &cfg->rules[0];
	assert_int_equal(r->breaker.consecutive, 0);
	assert_true(r->breaker.rate == 0.25);
	assert_int_equal(r->breaker.open_for_max, 600 * SEC);   /* never below open_for */
	assert_int_equal(r->retry.max, 8 * SEC);               /* never below base */
	assert_true(r->retry.budget_ratio == 0.2);
	assert_int_equal(r->retry.budget_min_per_sec, 5);
	bw_config_free(cfg);
}

static void test_presets(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\nrules:\n"
					"  - { name: q, retry: quick }\n"
					"  - { name: c, retry: conservative }\n"
					"  - { name: a, retry: aggressive }\n"
					"  - { name: o, retry: off }\n");
	const struct {
		int attempts;
		bw_usec base, max;
	} want[] = { { 2, 100 * MS, 1 * SEC }, { 3, 1 * SEC, 5 * SEC }, { 5, 200 * MS, 10 * SEC } };
	for (int i = 0; i < 3; i++) {
		const struct bw_retry *r = &cfg->rules[i].retry;
		assert_true(cfg->rules[i].has_retry);
		assert_int_equal(r->attempts, want[i].attempts);
		assert_int_equal(r->base, want[i].base);
		assert_int_equal(r->max, want[i].max);
		assert_true(r->multiplier == 2);
		assert_int_equal(r->jitter, BW_JITTER_FULL);
	}
	assert_false(cfg->rules[3].has_retry);
	assert_int_equal(cfg->rules[3].retry.attempts, 0);
	bw_config_free(cfg);
}

static void test_defaults_merge_at_depth(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok(
		"version: 1\n"
		"defaults:\n"
		"  retry:\n"
		"    attempts: 7\n"
		"    backoff: { base: 50ms, max: 3s, jitter: equal }\n"
		"    deadline: 20s\n"
		"  breaker: { trip: { consecutive: 2 }, open_for: 1s }\n"
		"  max_keys: 64\n"
		"rules:\n"
		"  - name: own-attempts\n"
		"    match: { ops: [connect] }\n"
		"    retry: { attempts: 5, backoff: { max: 10s } }\n"
		"    breaker: { open_for: 4s }\n"
		"  - name: inherits\n"
		"    match: { ops: [connect] }\n"
		"  - name: off\n"
		"    match: { ops: [connect] }\n"
		"    retry: off\n"
		"  - name: preset\n"
		"    match: { ops: [connect] }\n"
		"    retry: quick\n"
		"    max_keys: 8\n");
	const struct bw_rule *r = rule(cfg, "own-attempts");
	assert_int_equal(r->retry.attempts, 5);        /* the rule's own */
	assert_int_equal(r->retry.base, 50 * MS);      /* defaults, one level down */
	assert_int_equal(r->retry.max, 10 * SEC);      /* the rule's own, one level down */
	assert_int_equal(r->retry.jitter, BW_JITTER_EQUAL);
	assert_int_equal(r->retry.deadline, 20 * SEC);
	assert_int_equal(r->breaker.consecutive, 2);
	assert_int_equal(r->breaker.open_for, 4 * SEC);
	assert_int_equal(r->max_keys, 64);

	r = rule(cfg, "inherits");
	assert_true(r->has_retry);
	assert_int_equal(r->retry.attempts, 7);
	assert_int_equal(r->retry.max, 3 * SEC);
	assert_true(r->breaker.enabled);
	assert_int_equal(r->breaker.open_for, 1 * SEC);

	r = rule(cfg, "off");
	assert_false(r->has_retry);
	assert_int_equal(r->retry.attempts, 0);
	assert_true(r->breaker.enabled);

	r = rule(cfg, "preset");   /* a preset sets attempts and backoff; deadline still merges */
	assert_int_equal(r->retry.attempts, 2);
	assert_int_equal(r->retry.base, 100 * MS);
	assert_int_equal(r->retry.max, 1 * SEC);
	assert_int_equal(r->retry.jitter, BW_JITTER_FULL);
	assert_int_equal(r->retry.deadline, 20 * SEC);
	assert_int_equal(r->max_keys, 8);
	bw_config_free(cfg);
}

/* Defaults are generic: what cannot apply to a rule is left out of it without a word. */
static void test_defaults_that_do_not_apply(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok(
		"version: 1\n"
		"defaults:\n"
		"  retry: { on: [ECONNREFUSED, ECONNRESET, EAI_AGAIN, SQLITE_BUSY] }\n"
		"  timeout: { connect: 2s, recv: 30s }\n"
		"  breaker: { errno: ECONNREFUSED }\n"
		"  rate_limit: { rate: 1MiB/s, on_limit: fail }\n"
		"  fallback: [\"127.0.0.1:5433\"]\n"
		"  inject: [ { reset: true, probability: 1% }, { delay: 1ms }, "
		"{ ops: [sqlite], errno: SQLITE_BUSY } ]\n"
		"  nonblocking: observe\n"
		"rules:\n"
		"  - { name: c, match: { ops: [connect] } }\n"
		"  - { name: sr, match: { ops: [connect, send, recv] } }\n"
		"  - { name: acc, match: { ops: [accept] } }\n"
		"  - { name: dns, match: { ops: [resolve] } }\n"
		"  - { name: own-empty, match: { ops: [connect] }, fallback: [], inject: [] }\n");
	const struct bw_rule *r = rule(cfg, "c");
	assert_int_equal(r->retry.n_on, 2);
	assert_int_equal(r->retry.on[0], ECONNREFUSED);
	assert_int_equal(r->retry.on[1], ECONNRESET);   /* fine for connect */
	assert_int_equal(r->timeout.connect, 2 * SEC);
	assert_int_equal(r->timeout.recv, 0);
	assert_int_equal(r->breaker.err, ECONNREFUSED);
	assert_false(r->rate_limit.enabled);            /* a byte rate, for send/recv only */
	assert_int_equal(r->n_fallback, 1);
	assert_int_equal(r->n_inject, 1);               /* only the delay fits connect */
	assert_int_equal(r->inject[0].delay, 1 * MS);
	assert_int_equal(r->inject[0].ops, OP(CONNECT));
	assert_int_equal(r->nonblocking, BW_NB_OBSERVE);

	r = rule(cfg, "sr");
	assert_int_equal(r->retry.n_on, 1);             /* ECONNRESET is unsafe for send/recv */
	assert_int_equal(r->timeout.recv, 30 * SEC);
	assert_true(r->rate_limit.enabled);             /* the byte rate paces send/recv */
	assert_true(r->rate_limit.bytes);
	assert_int_equal(r->rate_limit.on_limit, BW_LIMIT_WAIT);   /* fail is not for send */
	assert_int_equal(r->n_inject, 2);
	assert_int_equal(r->inject[0].ops, OP(SEND) | OP(RECV));

	r = rule(cfg, "acc");
	assert_false(r->breaker.enabled);
	assert_int_equal(r->n_fallback, 0);
	assert_int_equal(r->retry.n_on, 2);             /* errno names fit accept */

	r = rule(cfg, "dns");
	assert_int_equal(r->retry.n_on, 1);
	assert_int_equal(r->retry.on[0], bw_err_parse("EAI_AGAIN"));
	assert_true(r->breaker.enabled);
	assert_int_equal(r->breaker.err, 0);            /* ECONNREFUSED does not fit resolve */
	assert_int_equal(r->timeout.connect, 0);

	r = rule(cfg, "own-empty");                     /* an own empty list clears the default */
	assert_int_equal(r->n_fallback, 0);
	assert_int_equal(r->n_inject, 0);
	bw_config_free(cfg);
}

static void test_default_rate_limit_needs_a_rate(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\ndefaults:\n  rate_limit: { max_wait: 2s }\n"
					"rules:\n  - { name: a }\n"
					"  - { name: b, rate_limit: { rate: 5/s } }\n");
	assert_false(cfg->rules[0].rate_limit.enabled);
	assert_true(cfg->rules[1].rate_limit.enabled);
	assert_int_equal(cfg->rules[1].rate_limit.max_wait, 2 * SEC);
	bw_config_free(cfg);
}

/* A byte bucket's burst in the units of its rate, or a plain number of bytes; a size in
 * defaults is left out of the rules whose rate counts calls. */
static void test_byte_burst(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok(
		"version: 1\n"
		"defaults:\n"
		"  rate_limit: { rate: 1MiB/s, burst: 64KiB }\n"
		"rules:\n"
		"  - { name: inherits, match: { ops: [send, recv] } }\n"
		"  - { name: calls, match: { ops: [send] }, rate_limit: { rate: 20/s } }\n"
		"  - { name: own-rate, match: { ops: [recv] }, rate_limit: { rate: 2MiB/s } }\n"
		"  - { name: plain, match: { ops: [recv] }, rate_limit: { burst: 4096 } }\n"
		"  - { name: decimal, match: { ops: [send] }, rate_limit: { rate: 100KB/s, "
		"burst: 1.5MB } }\n");
	const struct bw_rule *r = rule(cfg, "inherits");
	assert_true(r->rate_limit.bytes);
	assert_true(r->rate_limit.burst == 65536);
	r = rule(cfg, "calls");
	assert_false(r->rate_limit.bytes);
	assert_true(r->rate_limit.burst == 20);   /* one second's worth, not 65536 calls */
	r = rule(cfg, "own-rate");
	assert_true(r->rate_limit.rate == 2097152);
	assert_true(r->rate_limit.burst == 65536);
	r = rule(cfg, "plain");
	assert_true(r->rate_limit.burst == 4096);
	r = rule(cfg, "decimal");
	assert_true(r->rate_limit.rate == 100000);
	assert_true(r->rate_limit.burst == 1500000);
	bw_config_free(cfg);
}

static void test_inject_ops_narrow_to_fit(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\nrules:\n  - name: s\n"
					"    match: { ops: [connect, send, recv] }\n"
					"    inject:\n      - { eof: true }\n      - { reset: true }\n"
					"      - { errno: ETIMEDOUT, delay: 1s }\n");
	const struct bw_rule *r = &cfg->rules[0];
	assert_int_equal(r->inject[0].ops, OP(RECV));
	assert_int_equal(r->inject[1].ops, OP(SEND) | OP(RECV));
	assert_int_equal(r->inject[2].ops, OP(CONNECT) | OP(SEND) | OP(RECV));
	bw_config_free(cfg);
}

static const char conn_faults_policy[] =
	"version: 1\nseed: 3\nrules:\n  - name: s\n"
	"    match: { ops: [connect, send, recv] }\n"
	"    inject:\n"
	"      - { ops: [recv], latency: 100ms, jitter: 20ms, distribution: normal }\n"
	"      - { latency: 300ms, per: connection, probability: 10% }\n"
	"      - { ops: [recv], limit_data: 1000 }\n"
	"      - { stall: true, after: 3 }\n"
	"      - { slow_close: 500ms }\n"
	"      - { loss: true, probability: 5% }\n"
	"      - { duplicate: true, probability: 5% }\n"
	"      - { reorder: true, probability: 5%, per: connection }\n"
	"      - { latency: 1ms, jitter: 1s, distribution: exponential }\n";

/* The faults of a connection and of datagrams: each narrows its entry's ops to those
 * it applies to, as eof and reset do. */
static void test_connection_faults(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok(conn_faults_policy);
	const struct bw_inject *in = cfg->rules[0].inject;
	assert_int_equal(in[0].latency, 100 * MS);
	assert_int_equal(in[0].jitter, 20 * MS);
	assert_int_equal(in[0].distribution, BW_DIST_NORMAL);
	assert_int_equal(in[0].per, BW_PER_CALL);
	assert_int_equal(in[1].per, BW_PER_CONNECTION);
	assert_int_equal(in[1].ops, OP(SEND) | OP(RECV));   /* connections: transfers only */
	assert_int_equal(in[2].limit_data, 1000);
	assert_true(in[3].stall);
	assert_int_equal(in[3].ops, OP(SEND) | OP(RECV));
	assert_int_equal(in[4].slow_close, 500 * MS);
	assert_int_equal(in[4].ops, OP(RECV));
	assert_true(in[5].loss);
	assert_int_equal(in[5].ops, OP(SEND) | OP(RECV));
	assert_int_equal(in[6].ops, OP(SEND));
	assert_int_equal(in[7].ops, OP(SEND));
	assert_int_equal(in[8].ops, OP(CONNECT) | OP(SEND) | OP(RECV));
	assert_int_equal(in[8].distribution, BW_DIST_EXPONENTIAL);
	bw_config_free(cfg);
}

static void test_default_policy(void **state)
{
	(void)state;
	struct bw_config *cfg = bw_config_default();
	assert_non_null(cfg);
	assert_string_equal(cfg->path, "<default>");
	assert_int_equal(cfg->log.level, BW_LVL_WARN);
	assert_int_equal(cfg->n_rules, 6);
	assert_int_equal(cfg->ops, OP(CONNECT) | OP(RESOLVE) | OP(SQLITE) | OP(PG) | OP(MYSQL) |
			 OP(REDIS));
	const struct bw_rule *r = rule(cfg, "default-connect");
	/* network peers only: an optional local socket must cost nothing */
	assert_int_equal(r->match.n_dest, 1);
	assert_int_equal(r->match.dest[0].kind, BW_DEST_ANYADDR);
	assert_int_equal(r->match.dest[0].port, -1);
	assert_int_equal(r->retry.attempts, 6);
	assert_int_equal(r->retry.base, 200 * MS);
	assert_int_equal(r->retry.max, 2 * SEC);
	assert_int_equal(r->retry.jitter, BW_JITTER_EQUAL);
	assert_int_equal(r->retry.deadline, 15 * SEC);
	assert_int_equal(r->timeout.connect, 10 * SEC);
	assert_true(r->breaker.enabled);
	assert_int_equal(r->breaker.consecutive, 8);
	assert_int_equal(r->breaker.open_for, 5 * SEC);
	r = rule(cfg, "default-resolve");
	assert_int_equal(r->retry.attempts, 3);
	assert_int_equal(r->retry.jitter, BW_JITTER_FULL);
	r = rule(cfg, "default-sqlite");
	assert_int_equal(r->retry.attempts, 10);
	assert_int_equal(r->retry.base, 5 * MS);
	assert_int_equal(r->retry.max, 500 * MS);
	assert_int_equal(r->retry.deadline, 10 * SEC);
	assert_non_null(strstr(bw_default_policy_yaml, "  - name: default-sqlite\n"));
	r = rule(cfg, "default-pg");
	assert_int_equal(r->match.ops, OP(PG));
	assert_int_equal(r->retry.attempts, 6);
	assert_int_equal(r->retry.jitter, BW_JITTER_EQUAL);
	assert_int_equal(r->retry.deadline, 15 * SEC);
	assert_false(r->breaker.enabled);
	r = rule(cfg, "default-mysql");
	assert_int_equal(r->match.ops, OP(MYSQL));
	assert_int_equal(r->retry.attempts, 6);
	assert_int_equal(r->retry.deadline, 15 * SEC);
	r = rule(cfg, "default-redis");
	assert_int_equal(r->match.ops, OP(REDIS));
	assert_int_equal(r->retry.attempts, 5);
	assert_int_equal(r->retry.max, SEC);
	assert_int_equal(r->retry.deadline, 5 * SEC);
	assert_false(r->breaker.enabled);
	bw_config_free(cfg);
}

static void test_ops_names(void **state)
{
	(void)state;
	for (int op = 0; op < BW_OP_COUNT; op++)
		assert_int_equal(bw_op_parse(bw_op_name(op)), op);
	assert_int_equal(bw_op_parse("write"), -1);
	assert_string_equal(bw_op_name(BW_OP_RECV), "recv");
}

/* ---- files ---- */

static void test_load_file(void **state)
{
	char path[] = "/tmp/bw-test-XXXXXX";
	struct bw_diags dg = { .n = 0 };
	char line[600];
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "version: 1\nrules:\n  - name: a\n    retry: quick\n    max_keys: 0\n";
	assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	assert_null(bw_config_load_file(path, &dg));
	assert_int_equal(dg.n, 1);
	bw_diag_format(&dg.d[0], line, sizeof line);
	char want[600];
	snprintf(want, sizeof want, "%s:5:15: rules[0].max_keys: expected an integer from 1 to "
		 "1000000, got 0", path);
	assert_string_equal(line, want);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, text, strlen(text) - 16), (int)strlen(text) - 16);
	close(fd);
	struct bw_config *cfg = bw_config_load_file(path, &dg);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, path);   /* already absolute */
	bw_config_free(cfg);
	unlink(path);

	dg.n = 0;
	assert_null(bw_config_load_file("/nonexistent/bulwark.yaml", &dg));
	bw_diag_format(&dg.d[0], line, sizeof line);
	assert_string_equal(line, "/nonexistent/bulwark.yaml: cannot open: No such file or "
			    "directory");
	dg.n = 0;
	assert_null(bw_config_load_file("/tmp", &dg));
	bw_diag_format(&dg.d[0], line, sizeof line);
	assert_string_equal(line, "/tmp: cannot read: Is a directory");
}

/* ---- dump -> load ---- */

static void assert_dests_equal(const struct bw_dest *a, const struct bw_dest *b, int n)
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(a[i].kind, b[i].kind);
		assert_int_equal(a[i].family, b[i].family);
		assert_memory_equal(a[i].addr, b[i].addr, 16);
		assert_int_equal(a[i].prefix, b[i].prefix);
		assert_int_equal(a[i].port, b[i].port);
		assert_string_equal(a[i].text, b[i].text);
		if (a[i].pattern || b[i].pattern)
			assert_string_equal(a[i].pattern, b[i].pattern);
	}
}

static void assert_strs_equal(char **a, char **b, int n)
{
	for (int i = 0; i < n; i++)
		assert_string_equal(a[i], b[i]);
}

/* Field by field: struct padding need not survive a copy. */
static void assert_retry_equal(const struct bw_retry *a, const struct bw_retry *b)
{
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->n_on, b->n_on);
	assert_memory_equal(a->on, b->on, sizeof a->on);
	assert_int_equal(a->base, b->base);
	assert_int_equal(a->max, b->max);
	assert_true(a->multiplier == b->multiplier);
	assert_int_equal(a->jitter, b->jitter);
	assert_int_equal(a->deadline, b->deadline);
	assert_true(a->budget_ratio == b->budget_ratio);
	assert_int_equal(a->budget_min_per_sec, b->budget_min_per_sec);
}

static void assert_breaker_equal(const struct bw_breaker *a, const struct bw_breaker *b)
{
	assert_int_equal(a->enabled, b->enabled);
	assert_int_equal(a->scope, b->scope);
	assert_int_equal(a->consecutive, b->consecutive);
	assert_true(a->rate == b->rate);
	assert_int_equal(a->window, b->window);
	assert_int_equal(a->min_calls, b->min_calls);
	assert_int_equal(a->open_for, b->open_for);
	assert_int_equal(a->open_for_max, b->open_for_max);
	assert_int_equal(a->half_open_probes, b->half_open_probes);
	assert_int_equal(a->err, b->err);
}

static void assert_limit_equal(const struct bw_rate_limit *a, const struct bw_rate_limit *b)
{
	assert_int_equal(a->enabled, b->enabled);
	assert_int_equal(a->scope, b->scope);
	assert_true(a->rate == b->rate);
	assert_int_equal(a->bytes, b->bytes);
	assert_true(a->burst == b->burst);
	assert_int_equal(a->on_limit, b->on_limit);
	assert_int_equal(a->max_wait, b->max_wait);
	assert_int_equal(a->err, b->err);
}

static void assert_inject_equal(const struct bw_inject *a, const struct bw_inject *b)
{
	assert_int_equal(a->ops, b->ops);
	assert_int_equal(a->err, b->err);
	assert_true(a->probability == b->probability);
	assert_int_equal(a->after, b->after);
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->delay, b->delay);
	assert_int_equal(a->partial, b->partial);
	assert_int_equal(a->eof, b->eof);
	assert_int_equal(a->reset, b->reset);
	assert_int_equal(a->latency, b->latency);
	assert_int_equal(a->jitter, b->jitter);
	assert_int_equal(a->distribution, b->distribution);
	assert_int_equal(a->limit_data, b->limit_data);
	assert_int_equal(a->stall, b->stall);
	assert_int_equal(a->slow_close, b->slow_close);
	assert_int_equal(a->loss, b->loss);
	assert_int_equal(a->duplicate, b->duplicate);
	assert_int_equal(a->reorder, b->reorder);
	assert_int_equal(a->per, b->per);
}

static void assert_rules_equal(const struct bw_rule *a, const struct bw_rule *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->match.ops, b->match.ops);
	assert_int_equal(a->match.n_dest, b->match.n_dest);
	assert_dests_equal(a->match.dest, b->match.dest, a->match.n_dest);
	assert_int_equal(a->match.n_host, b->match.n_host);
	assert_strs_equal(a->match.host, b->match.host, a->match.n_host);
	assert_int_equal(a->match.n_db, b->match.n_db);
	assert_strs_equal(a->match.db, b->match.db, a->match.n_db);
	assert_int_equal(a->match.n_prog, b->match.n_prog);
	assert_strs_equal(a->match.prog, b->match.prog, a->match.n_prog);
	assert_int_equal(a->has_retry, b->has_retry);
	assert_retry_equal(&a->retry, &b->retry);
	assert_int_equal(a->timeout.connect, b->timeout.connect);
	assert_int_equal(a->timeout.recv, b->timeout.recv);
	assert_int_equal(a->timeout.send, b->timeout.send);
	assert_breaker_equal(&a->breaker, &b->breaker);
	assert_limit_equal(&a->rate_limit, &b->rate_limit);
	assert_int_equal(a->n_fallback, b->n_fallback);
	assert_dests_equal(a->fallback, b->fallback, a->n_fallback);
	assert_int_equal(a->n_inject, b->n_inject);
	for (int i = 0; i < a->n_inject; i++)
		assert_inject_equal(&a->inject[i], &b->inject[i]);
	assert_int_equal(a->nonblocking, b->nonblocking);
	assert_int_equal(a->max_keys, b->max_keys);
	assert_int_equal(a->n_idempotent, b->n_idempotent);
	assert_strs_equal(a->idempotent, b->idempotent, a->n_idempotent);
}

static void round_trip(struct bw_config *cfg)
{
	char *text = dump_text(cfg);
	struct bw_diags dg;
	struct bw_config *again = load(text, &dg);
	if (!again) {
		char line[600];
		bw_diag_format(&dg.d[0], line, sizeof line);
		print_error("%s\n%s\n", text, line);
	}
	assert_non_null(again);
	assert_int_equal(cfg->version, again->version);
	assert_int_equal(cfg->mode, again->mode);
	assert_int_equal(cfg->on_config_error, again->on_config_error);
	assert_true(cfg->seed == again->seed);
	assert_int_equal(cfg->log.sink, again->log.sink);
	if (cfg->log.path || again->log.path)
		assert_string_equal(cfg->log.path, again->log.path);
	assert_int_equal(cfg->log.level, again->log.level);
	assert_int_equal(cfg->log.facility, again->log.facility);
	assert_int_equal(cfg->log.summary, again->log.summary);
	assert_int_equal(cfg->state.share, again->state.share);
	if (cfg->state.dir || again->state.dir)
		assert_string_equal(cfg->state.dir, again->state.dir);
	assert_int_equal(cfg->ops, again->ops);
	assert_int_equal(cfg->n_rules, again->n_rules);
	for (int i = 0; i < cfg->n_rules; i++)
		assert_rules_equal(&cfg->rules[i], &again->rules[i]);
	char *text2 = dump_text(again);   /* and the dump is a fixed point, comment line aside */
	assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));
	free(text);
	free(text2);
	bw_config_free(again);
	bw_config_free(cfg);
}

static void test_round_trip_full(void **state)
{
	(void)state;
	round_trip(load_ok(full_policy));
}

static void test_round_trip_default(void **state)
{
	(void)state;
	round_trip(bw_config_default());
	round_trip(load_ok(conn_faults_policy));
}

static void test_round_trip_merged(void **state)
{
	(void)state;
	round_trip(load_ok("version: 1\nlog: { sink: \"file:/tmp/a \\\"b\\\".log\" }\n"
			   "state: { dir: \"/run/my state\" }\n"
			   "defaults:\n  retry: { budget: {}, on: [ECONNREFUSED, EAI_AGAIN] }\n"
			   "  rate_limit: { rate: 10/h, burst: 2.5 }\n"
			   "  inject: [ { delay: 1500us, probability: 33.3% } ]\n"
			   "rules:\n  - { name: \"true\", retry: aggressive }\n"
			   "  - { name: b, match: { ops: resolve, host: [\"-x\", \"a b\"] } }\n"
			   "  - { name: c, match: { prog: [\"null\"] }, retry: off }\n"
			   "  - { name: d, match: { ops: [send] }, rate_limit: { rate: 100KB/min, "
			   "burst: 1.5KiB } }\n"
			   "  - { name: e, match: { ops: [recv] }, rate_limit: { rate: 100KB/min } }\n"
			   "  - { name: f, match: { ops: [mysql, redis] }, idempotent: [\"UPDATE t "
			   "SET a = 'b'\", SET] }\n"));
}

static void test_dump_byte_burst(void **state)
{
	char *text = NULL;
	size_t len = 0;
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\nrules:\n  - { name: r, match: { ops: [send] }, "
					"rate_limit: { rate: 1MiB/s, burst: 65536 } }\n"
					"  - { name: c, rate_limit: { rate: 5/s, burst: 20 } }\n");
	FILE *f = open_memstream(&text, &len);
	bw_rule_dump(&cfg->rules[0], f, 0);
	bw_rule_dump(&cfg->rules[1], f, 0);
	fclose(f);
	assert_non_null(strstr(text, "  rate: 1MiB/s\n  burst: 64KiB\n"));
	assert_non_null(strstr(text, "  rate: 5/s\n  burst: 20\n"));
	free(text);
	round_trip(cfg);
}

static void test_dump_rule(void **state)
{
	char *text = NULL;
	size_t len = 0;
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\nrules:\n  - { name: r, match: { ops: [resolve] }, "
					"retry: { attempts: 2 } }\n");
	FILE *f = open_memstream(&text, &len);
	bw_rule_dump(&cfg->rules[0], f, 2);
	fclose(f);
	assert_string_equal(text, "  name: r\n  match:\n    ops: [resolve]\n  retry:\n"
			    "    attempts: 2\n    backoff:\n      base: 100ms\n      max: 5s\n"
			    "      multiplier: 2\n      jitter: full\n  max_keys: 4096\n");
	free(text);
	bw_config_free(cfg);
}

#define BAD(i) cmocka_unit_test_prestate(test_bad, (void *)&bad_cases[i])

/* match.cmd_hash: kept in lower case (events write it so), dumped back, and only the
 * process whose command line hashes to one of them is matched. */
static void test_cmd_hash(void **state)
{
	(void)state;
	struct bw_config *cfg = load_ok("version: 1\nrules:\n  - name: a\n    match: { ops: "
					"[connect], prog: [py*], cmd_hash: [401801FC84F3CA79] }\n");
	assert_int_equal(cfg->rules[0].match.n_cmd_hash, 1);
	assert_string_equal(cfg->rules[0].match.cmd_hash[0], "401801fc84f3ca79");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	bw_config_dump(cfg, f);
	fclose(f);
	assert_non_null(strstr(text, "      cmd_hash: [401801fc84f3ca79]\n"));
	free(text);
	/* FNV-1a of the arguments "a" and "bc", each ended by its NUL as in /proc */
	assert_true(bw_cmd_hash("a\0bc\0", 5, BW_CMD_HASH_INIT) == UINT64_C(0x401801fc84f3ca79));
	struct bw_env env = { 0 };
	struct bw_engine e;
	assert_int_equal(bw_engine_init(&e, cfg, &env, 1, "python3", 1), 0);
	assert_int_equal(e.active[0], 0);        /* its command line is not known */
	bw_engine_set_proc(&e, UINT64_C(0x401801fc84f3ca7a), 7);
	assert_int_equal(e.active[0], 0);
	assert_false(e.ops & BW_OPBIT(BW_OP_CONNECT));
	bw_engine_set_proc(&e, UINT64_C(0x401801fc84f3ca79), 7);
	assert_int_equal(e.active[0], 1);
	assert_true(e.ops & BW_OPBIT(BW_OP_CONNECT));
	bw_engine_fini(&e);
	assert_int_equal(bw_engine_init(&e, cfg, &env, 1, "node", 1), 0);
	bw_engine_set_proc(&e, UINT64_C(0x401801fc84f3ca79), 7);
	assert_int_equal(e.active[0], 0);        /* the program's name must match as well */
	bw_engine_fini(&e);
	bw_config_free(cfg);
}

int main(void)
{
	struct CMUnitTest tests[256];
	size_t n = 0, nbad = sizeof bad_cases / sizeof bad_cases[0];
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_every_problem_is_reported),
		cmocka_unit_test(test_diags_are_capped_but_counted),
		cmocka_unit_test(test_diag_format_without_position),
		cmocka_unit_test(test_limit_depth),
		cmocka_unit_test(test_limit_nodes),
		cmocka_unit_test(test_limit_aliases),
		cmocka_unit_test(test_limit_inherited),
		cmocka_unit_test(test_limit_size),
		cmocka_unit_test(test_state_dir_length),
		cmocka_unit_test(test_rule_count_limit),
		cmocka_unit_test(test_full_policy),
		cmocka_unit_test(test_top_level_defaults),
		cmocka_unit_test(test_level_follows_the_sink),
		cmocka_unit_test(test_section_defaults),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_defaults_merge_at_depth),
		cmocka_unit_test(test_defaults_that_do_not_apply),
		cmocka_unit_test(test_default_rate_limit_needs_a_rate),
		cmocka_unit_test(test_byte_burst),
		cmocka_unit_test(test_inject_ops_narrow_to_fit),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_ops_names),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_connection_faults),
		cmocka_unit_test(test_round_trip_full),
		cmocka_unit_test(test_round_trip_default),
		cmocka_unit_test(test_round_trip_merged),
		cmocka_unit_test(test_dump_rule),
		cmocka_unit_test(test_dump_byte_burst),
		cmocka_unit_test(test_cmd_hash),
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < nbad && n < sizeof tests / sizeof tests[0]; i++) {
		struct CMUnitTest t = BAD(i);
		static char names[200][32];
		snprintf(names[i], sizeof names[i], "bad_case_%zu", i);
		t.name = names[i];
		tests[n++] = t;
	}
	return _cmocka_run_group_tests("test_config", tests, n, NULL, NULL);
}
