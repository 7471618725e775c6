/* `bulwark report --replay`: a run's failures as an inject policy that makes them happen
 * again, at the same calls (bulwark(1), REPORT).
 *
 * A fail event in observe mode carries n, the attempt's number among its process's
 * attempts of that op to that destination under its rule: exactly what an inject entry
 * counts when its rule matches that one program and destination. So the k-th attempt
 * that failed becomes `after: k-1, count: 1` (runs of consecutive ones, one entry with a
 * count) in a rule matching the program, the op and the destination. Processes are told
 * apart by program name, and where two of the run share one, by the hash of their command
 * line (start events' cmd_hash): pids change from one run to the next.
 *
 * With a base policy (-c FILE, a cure to try), each replay rule does what FILE's rule for
 * those calls does (its retry, timeout, breaker...) and FILE's rules follow: the cure
 * meets the very failure it is for. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "errnames.h"
#include "fx.h"
#include "match.h"
#include "ops.h"
#include "target.h"

enum fault_kind { F_ERR, F_RESET, F_EOF, F_PARTIAL, F_DELAY, F_STALL, F_LOSS, F_DUP,
		  F_REORDER };

struct fault {
	int group;
	long long n;
	enum fault_kind kind;
	int code;                /* F_ERR */
	int64_t delay_us;        /* F_DELAY */
	int op;
	int ev;                  /* the event it came from */
};

/* One replay rule: a program (name, and command-line hash where needed), a destination
 * and the base rule whose policy it takes (-1: none). */
struct group {
	const char *prog, *cmd_hash, *dest;
	int base;                /* index of the base rule, -1 none */
	unsigned ops;            /* ops with faults */
	int first_proc;          /* a process of it, for the comment */
	long long procs;         /* how many processes of the run it stands for */
	char name[BW_NAME_MAX];
};

struct replay {
	struct bw_fx *m;
	const struct bw_replay_opts *o;
	int run;                 /* the run replayed, -1 none */
	struct fault *f;
	size_t nf, capf;
	struct group *g;
	size_t ng, capg;
	unsigned char *active;   /* base rules for the group being matched */
	long long skipped;
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

/* Whether the event is a fault to replay: a failure the program met (not one injected:
 * the injected event says what was injected, delays and partial transfers too). */
static int replayable(const struct bw_fx_ev *e)
{
	if (!e->n || !e->op || !e->dest)
		return 0;
	if (e->kind == BW_FX_FAIL)
		return !e->injected && e->err;
	return e->kind == BW_FX_INJECTED;
}

/* The run to replay: the one with the process asked for, else the last run with a
 * failure to replay. -1 when there is none. */
static int pick_run(struct replay *rp)
{
	struct bw_fx *m = rp->m;
	if (rp->o->pid) {
		int found = -1;
		for (size_t i = 0; i < m->n_procs; i++)
			if (m->procs[i].pid == rp->o->pid)
				found = m->procs[i].run;
		return found;
	}
	int run = -1;
	int64_t at = 0;
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		if (!replayable(e))
			continue;
		int r = m->procs[e->proc].run;
		int64_t s = m->procs[r].start_us;
		if (run < 0 || s >= at) {
			run = r;
			at = s;
		}
	}
	return run;
}

/* A program name a `match.prog` glob matches as itself. */
static int plain_prog(const char *s)
{
	return s && *s && !strpbrk(s, "*?[]\\");
}

/* Whether processes of this run with the program name p differ in command line: then the
 * hash tells them apart. */
static int prog_ambiguous(struct replay *rp, const char *prog)
{
	const char *first = NULL;
	int seen = 0;
	for (size_t i = 0; i < rp->m->n_procs; i++) {
		const struct bw_fx_proc *p = &rp->m->procs[i];
		if (p->run != rp->run || strcmp(p->prog, prog) != 0)
			continue;
		const char *h = p->cmd_hash ? p->cmd_hash : "";
		if (!seen++)
			first = h;
		else if (strcmp(first, h) != 0)
			return 1;
	}
	return 0;
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---- the base policy's rule for a group's calls ---- */

static int base_rule(struct replay *rp, const char *prog, const char *cmd_hash, int op,
		     const char *dest)
{
	const struct bw_config *cfg = rp->o->base;
	if (!cfg || !cfg->n_rules)
		return -1;
	for (int i = 0; i < cfg->n_rules; i++) {
		const struct bw_match *mt = &cfg->rules[i].match;
		int hit = mt->n_prog == 0;
		for (int j = 0; j < mt->n_prog && !hit; j++)
			hit = bw_glob(mt->prog[j], prog);
		if (hit && mt->n_cmd_hash) {
			hit = 0;
			for (int j = 0; j < mt->n_cmd_hash && !hit && cmd_hash; j++)
				hit = strcmp(mt->cmd_hash[j], cmd_hash) == 0;
		}
		rp->active[i] = (unsigned char)hit;
	}
	struct bw_target t = { .op = op };
	struct bw_addr addr[1];
	char host[256];
	int port;
	if (op == BW_OP_RESOLVE) {
		t.host = dest;
	} else if (op == BW_OP_SQLITE) {
		t.db = dest;
	} else if (bw_target_host(dest, host, sizeof host, &port) == 0 &&
		   bw_socket_target(dest, addr, 1) == 1) {
		t.addr = (const struct sockaddr *)&addr[0].ss;
		t.addrlen = addr[0].len;
	} else {
		return -1;
	}
	const char *h;
	const struct bw_rule *r = bw_match(cfg, rp->active, &t, &h);
	return r ? (int)(r - cfg->rules) : -1;
}

/* ---- collecting ---- */

static int group_of(struct replay *rp, const struct bw_fx_ev *e, int op)
{
	const struct bw_fx_proc *p = &rp->m->procs[e->proc];
	const char *cmd = prog_ambiguous(rp, p->prog) ? p->cmd_hash : NULL;
	if (!plain_prog(p->prog) && !cmd)
		cmd = p->cmd_hash;
	int base = base_rule(rp, p->prog, p->cmd_hash, op, e->dest);
	for (size_t i = 0; i < rp->ng; i++) {
		struct group *g = &rp->g[i];
		if (strcmp(g->prog, p->prog) == 0 && same(g->cmd_hash, cmd) &&
		    strcmp(g->dest, e->dest) == 0 && g->base == base)
			return (int)i;
	}
	if (rp->ng == rp->capg) {
		rp->capg = rp->capg ? rp->capg * 2 : 8;
		rp->g = xrealloc(rp->g, rp->capg, sizeof *rp->g);
	}
	struct group *g = &rp->g[rp->ng];
	memset(g, 0, sizeof *g);
	g->prog = p->prog;
	g->cmd_hash = cmd;
	g->dest = e->dest;
	g->base = base;
	g->first_proc = e->proc;
	return (int)rp->ng++;
}

static void add_fault(struct replay *rp, int ev, int op, enum fault_kind kind, int code,
		      int64_t delay_us)
{
	const struct bw_fx_ev *e = &rp->m->evs[ev];
	if (rp->nf == rp->capf) {
		rp->capf = rp->capf ? rp->capf * 2 : 16;
		rp->f = xrealloc(rp->f, rp->capf, sizeof *rp->f);
	}
	int g = group_of(rp, e, op);
	rp->g[g].ops |= BW_OPBIT(op);
	rp->f[rp->nf++] = (struct fault){ g, e->n, kind, code, delay_us, op, ev };
}

/* Whether an error can be injected into op: the spaces of its errors (connect's are
 * errno values, resolve's EAI_*, sqlite's SQLite codes). */
static int err_fits(int code, int op)
{
	return code && (bw_ops_in_space(bw_err_space(code)) & BW_OPBIT(op));
}

static void collect(struct replay *rp)
{
	struct bw_fx *m = rp->m;
	for (size_t i = 0; i < m->n_evs; i++) {
		const struct bw_fx_ev *e = &m->evs[i];
		if (!replayable(e) || m->procs[e->proc].run != rp->run)
			continue;
		int op = bw_fx_op(e->op);
		if (op < 0) {
			rp->skipped++;
			continue;
		}
		int stream = op == BW_OP_SEND || op == BW_OP_RECV;
		if (e->kind == BW_FX_FAIL) {
			int code = bw_err_parse(e->err);
			/* a peer's reset is replayed as a real one: the program's next calls on
			 * the connection then fail as they did */
			if (stream && code == ECONNRESET)
				add_fault(rp, (int)i, op, F_RESET, 0, 0);
			else if (err_fits(code, op))
				add_fault(rp, (int)i, op, F_ERR, code, 0);
			else
				rp->skipped++;
			continue;
		}
		int any = 0;
		if (e->delay_ms > 0) {
			add_fault(rp, (int)i, op, F_DELAY, 0, (int64_t)(e->delay_ms * 1000.0 + 0.5));
			any = 1;
		}
		if (e->reason && stream && strcmp(e->reason, "reset") == 0)
			add_fault(rp, (int)i, op, F_RESET, 0, 0), any = 1;
		else if (e->reason && stream && strcmp(e->reason, "partial") == 0)
			add_fault(rp, (int)i, op, F_PARTIAL, 0, 0), any = 1;
		else if (e->reason && op == BW_OP_RECV && strcmp(e->reason, "eof") == 0)
			add_fault(rp, (int)i, op, F_EOF, 0, 0), any = 1;
		/* the faults a connection keeps, and a datagram's; a byte limit's size and a
		 * slow close's length are not in the event: those are not replayed */
		else if (e->reason && stream && strcmp(e->reason, "stall") == 0)
			add_fault(rp, (int)i, op, F_STALL, 0, 0), any = 1;
		else if (e->reason && stream && strcmp(e->reason, "loss") == 0)
			add_fault(rp, (int)i, op, F_LOSS, 0, 0), any = 1;
		else if (e->reason && op == BW_OP_SEND && strcmp(e->reason, "duplicate") == 0)
			add_fault(rp, (int)i, op, F_DUP, 0, 0), any = 1;
		else if (e->reason && op == BW_OP_SEND && strcmp(e->reason, "reorder") == 0)
			add_fault(rp, (int)i, op, F_REORDER, 0, 0), any = 1;
		else if (e->err && err_fits(bw_err_parse(e->err), op))
			add_fault(rp, (int)i, op, F_ERR, bw_err_parse(e->err), 0), any = 1;
		if (!any)
			rp->skipped++;
	}
}

/* ---- writing ---- */

static int fault_cmp(const void *a, const void *b)
{
	const struct fault *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->op != y->op)
		return x->op < y->op ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	if (x->delay_us != y->delay_us)
		return x->delay_us < y->delay_us ? -1 : 1;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->ev - y->ev;
}

static int same_fault(const struct fault *a, const struct fault *b)
{
	return a->group == b->group && a->op == b->op && a->kind == b->kind &&
	       a->code == b->code && a->delay_us == b->delay_us;
}

static void name_groups(struct replay *rp)
{
	const struct bw_config *base = rp->o->base;
	for (size_t i = 0; i < rp->ng; i++) {
		struct group *g = &rp->g[i];
		char prog[33];
		size_t k = 0;
		for (const char *p = g->prog; *p && k < sizeof prog - 1; p++)
			prog[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
					   (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
					   *p == '-' ? *p : '_');
		prog[k] = '\0';
		for (int try = 0;; try++) {
			char b[128];
			if (try)
				snprintf(b, sizeof b, "replay-%zu-%s-%d", i + 1, prog, try);
			else
				snprintf(b, sizeof b, "replay-%zu-%s", i + 1, prog);
			b[sizeof g->name - 1] = '\0';
			memcpy(g->name, b, sizeof g->name);
			int clash = 0;
			for (int j = 0; base && j < base->n_rules && !clash; j++)
				clash = strcmp(base->rules[j].name, g->name) == 0;
			if (!clash)
				break;
		}
	}
	/* the processes each rule stands for, for its comment */
	for (size_t i = 0; i < rp->ng; i++) {
		struct group *g = &rp->g[i];
		for (size_t j = 0; j < rp->m->n_procs; j++) {
			const struct bw_fx_proc *p = &rp->m->procs[j];
			if (p->run == rp->run && strcmp(p->prog, g->prog) == 0 &&
			    (!g->cmd_hash || same(p->cmd_hash, g->cmd_hash)))
				g->procs++;
		}
	}
}

static void where(struct replay *rp, const struct fault *f, FILE *out)
{
	const struct bw_fx_ev *e = &rp->m->evs[f->ev];
	const struct bw_fx_proc *p = &rp->m->procs[e->proc];
	fputs("      # ", out);
	bw_fx_comment_text(out, rp->m->files[e->file]);
	fprintf(out, ":%lld %s: %s %s", e->line, e->ts ? e->ts : "(no time)",
		bw_fx_kind_name(e->kind), e->op);
	if (e->err)
		fprintf(out, " %s", e->err);
	if (e->reason) {
		fputc(' ', out);
		bw_fx_comment_text(out, e->reason);
	}
	if (e->delay_ms > 0)
		fprintf(out, " delay %gms", e->delay_ms);
	fprintf(out, ", attempt %lld, pid %lld\n", e->n, p->pid);
}

static void entry(struct replay *rp, const struct fault *f, long long count, FILE *out)
{
	fprintf(out, "      - { ops: [%s], ", bw_op_name(f->op));
	char d[32];
	switch (f->kind) {
	case F_ERR: fprintf(out, "errno: %s", bw_err_name(f->code)); break;
	case F_RESET: fputs("reset: true", out); break;
	case F_EOF: fputs("eof: true", out); break;
	case F_PARTIAL: fputs("partial: true", out); break;
	case F_STALL: fputs("stall: true", out); break;
	case F_LOSS: fputs("loss: true", out); break;
	case F_DUP: fputs("duplicate: true", out); break;
	case F_REORDER: fputs("reorder: true", out); break;
	case F_DELAY:
		/* microseconds are what events carry and what a policy reads */
		snprintf(d, sizeof d, "%lldus", (long long)f->delay_us);
		fprintf(out, "delay: %s", d);
		break;
	}
	fprintf(out, ", after: %lld, count: %lld }\n", f->n - 1, count);
	(void)rp;
}

static void match_line(const struct group *g, unsigned ops, FILE *out)
{
	char b[96];
	size_t o = 0;
	b[0] = '\0';
	for (int i = 0; i < BW_OP_COUNT; i++)
		if (ops & BW_OPBIT(i))
			o += (size_t)snprintf(b + o, sizeof b - o, "%s%s", o ? ", " : "",
					      bw_op_name(i));
	fprintf(out, "    match:\n      ops: [%s]\n", b);
	const char *key = (ops & BW_OPBIT(BW_OP_RESOLVE)) ? "host"
			  : (ops & BW_OPBIT(BW_OP_SQLITE)) ? "db" : "dest";
	fprintf(out, "      %s: [", key);
	bw_fx_yaml_str(out, g->dest);
	fputs("]\n", out);
	if (plain_prog(g->prog)) {
		fputs("      prog: [", out);
		bw_fx_yaml_str(out, g->prog);
		fputs("]\n", out);
	}
	if (g->cmd_hash)
		fprintf(out, "      cmd_hash: [\"%s\"]\n", g->cmd_hash);
}

static void write_rule(struct replay *rp, size_t gi, size_t lo, size_t hi, FILE *out)
{
	struct group *g = &rp->g[gi];
	const struct bw_config *base = rp->o->base;
	const struct bw_fx_proc *p = &rp->m->procs[g->first_proc];
	long long faults = 0;
	for (size_t i = lo; i < hi; i++)
		faults += i == lo || !same_fault(&rp->f[i - 1], &rp->f[i]) ||
			  rp->f[i - 1].n != rp->f[i].n;
	fputs("\n  # ", out);
	bw_fx_comment_text(out, g->prog);
	if (g->cmd_hash)
		fprintf(out, " (command line %s)", g->cmd_hash);
	fputs(" and ", out);
	bw_fx_comment_text(out, g->dest);
	fprintf(out, ": %lld fault%s, as pid %lld met them", faults, faults == 1 ? "" : "s",
		p->pid);
	if (g->procs > 1)
		fprintf(out, "; %lld processes of the run answer to this match, and each meets "
			"them all", g->procs);
	fputs("\n  - name: ", out);
	fputs(g->name, out);
	fputc('\n', out);
	const struct bw_rule *br = g->base >= 0 ? &base->rules[g->base] : NULL;
	match_line(g, br ? br->match.ops : g->ops, out);
	if (br) {
		fputs("    # the policy of ", out);
		bw_fx_comment_text(out, rp->o->base_path);
		fprintf(out, " rule %s for these calls\n", br->name);
		bw_rule_dump_policy(br, out, 4);
	} else {
		fputs("    retry: off\n", out);
	}
	fputs("    inject:\n", out);
	for (size_t i = lo; i < hi;) {
		/* one entry for a run of consecutive attempts with the same fault */
		size_t j = i + 1;
		while (j < hi && same_fault(&rp->f[i], &rp->f[j]) &&
		       rp->f[j].n <= rp->f[j - 1].n + 1)
			j++;
		for (size_t k = i; k < j; k++)
			if (k == i || rp->f[k].n != rp->f[k - 1].n)
				where(rp, &rp->f[k], out);
		entry(rp, &rp->f[i], rp->f[j - 1].n - rp->f[i].n + 1, out);
		i = j;
	}
}

int bw_fx_replay(struct bw_fx *m, const struct bw_replay_opts *o, FILE *out)
{
	struct replay rp = { .m = m, .o = o, .run = -1 };
	bw_fx_link(m);
	rp.active = calloc(o->base && o->base->n_rules ? (size_t)o->base->n_rules : 1, 1);
	if (!rp.active) {
		fputs("bulwark report: out of memory\n", stderr);
		exit(1);
	}
	rp.run = pick_run(&rp);
	if (rp.run >= 0)
		collect(&rp);
	/* group by rule, then by op, fault and position: entries come out in order */
	if (rp.nf > 1)
		qsort(rp.f, rp.nf, sizeof *rp.f, fault_cmp);
	name_groups(&rp);

	fputs("# bulwark report --replay: the failures of one run, as faults injected at the "
	      "same calls.\n", out);
	if (rp.run >= 0) {
		const struct bw_fx_proc *root = &m->procs[rp.run];
		fputs("# The run of ", out);
		bw_fx_comment_text(out, root->prog);
		fprintf(out, " (pid %lld), from ", root->pid);
		for (size_t i = 0; i < m->n_files; i++) {
			fputs(i ? ", " : "", out);
			bw_fx_comment_text(out, m->files[i]);
		}
		fputs(".\n", out);
	}
	fputs("#   bulwark run -c THIS_FILE -- COMMAND    fails the same way on every run in "
	      "which the\n#   program makes its calls in the same order.\n", out);
	if (o->base)
		fputs("# Each rule takes the policy the base policy gives its calls, and the base "
		      "policy's\n# rules follow: the cure against the failure it is meant "
		      "for.\n", out);
	if (rp.skipped)
		fprintf(out, "# %lld failure%s of the run could not be replayed (no destination, "
			"or an error no\n# inject entry of its op can give).\n", rp.skipped,
			rp.skipped == 1 ? "" : "s");
	fputs("version: 1\n", out);
	fprintf(out, "seed: %llu\n",
		(unsigned long long)(o->base && o->base->seed ? o->base->seed : 1));
	int n_rules = (int)rp.ng + (o->base ? o->base->n_rules : 0);
	if (!n_rules) {
		fputs("rules: []\n", out);
	} else {
		fputs("rules:\n", out);
		/* in the base policy's order, so that a call meets the same rule first */
		int *order = xrealloc(NULL, rp.ng ? rp.ng : 1, sizeof *order);
		for (size_t i = 0; i < rp.ng; i++)
			order[i] = (int)i;
		for (size_t i = 1; i < rp.ng; i++)
			for (size_t j = i; j > 0; j--) {
				int a = rp.g[order[j - 1]].base, b = rp.g[order[j]].base;
				if ((a < 0 ? 1 << 30 : a) <= (b < 0 ? 1 << 30 : b))
					break;
				int t = order[j];
				order[j] = order[j - 1];
				order[j - 1] = t;
			}
		for (size_t k = 0; k < rp.ng; k++) {
			size_t gi = (size_t)order[k], lo = 0;
			while (lo < rp.nf && rp.f[lo].group != (int)gi)
				lo++;
			size_t hi = lo;
			while (hi < rp.nf && rp.f[hi].group == (int)gi)
				hi++;
			write_rule(&rp, gi, lo, hi, out);
		}
		free(order);
		if (o->base && o->base->n_rules) {
			fputs("\n  # the rules of ", out);
			bw_fx_comment_text(out, o->base_path);
			fputs(", as `bulwark check` prints them\n", out);
			for (int i = 0; i < o->base->n_rules; i++)
				bw_rule_dump_item(&o->base->rules[i], out);
		}
	}
	if (rp.run < 0)
		fprintf(stderr, "bulwark report: no failure to replay%s (fail events carry the "
			"attempt's number n in observe mode, or under a rule with inject "
			"entries)\n", o->pid ? " in the run of that pid" : "");
	int rc = rp.nf ? 0 : 1;
	free(rp.active);
	free(rp.f);
	free(rp.g);
	return rc;
}
