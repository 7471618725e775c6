/* The forensics model from decoded event lines (fx.h). Like the report's reader, it takes
 * what it can: a member of the wrong type is as good as absent. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "fx.h"
#include "report.h"

static void *xrealloc(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		n = SIZE_MAX;
	void *q = realloc(p, n * size != 0 ? n * size : 1);
	if (!q) {
		fputs("bulwark: out of memory\n", stderr);
		exit(1);
	}
	return q;
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	return s && *s ? s : NULL;
}

static int whole(json_t *v, long long *out)
{
	if (!json_is_number(v))
		return 0;
	double d = json_number_value(v);
	if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(long long)d)
		return 0;
	*out = (long long)d;
	return 1;
}

static long long int_of(json_t *o, const char *key, long long none)
{
	long long v;
	return whole(json_object_get(o, key), &v) ? v : none;
}

static double num_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	double d = json_is_number(v) ? json_number_value(v) : -1;
	return d >= 0 ? d : -1;
}

static int64_t us_of(const char *ts)
{
	int64_t us;
	return ts && bw_rp_parse_ts(ts, &us) == 0 ? us : 0;
}

/* ---- pid -> latest process ---- */

static size_t pid_slot(const struct bw_fx *m, long long pid)
{
	return (size_t)((unsigned long long)pid * 0x9E3779B97F4A7C15u) & (m->cap_pids - 1);
}

static void pid_put(struct bw_fx *m, long long pid, int proc)
{
	if ((m->n_pids + 1) * 2 > m->cap_pids) {
		size_t old = m->cap_pids;
		long long *keys = m->pid_keys;
		int *vals = m->pid_vals;
		m->cap_pids = old ? old * 2 : 64;
		m->pid_keys = xrealloc(NULL, m->cap_pids, sizeof *m->pid_keys);
		m->pid_vals = xrealloc(NULL, m->cap_pids, sizeof *m->pid_vals);
		for (size_t i = 0; i < m->cap_pids; i++)
			m->pid_vals[i] = -1;
		m->n_pids = 0;
		for (size_t i = 0; i < old; i++)
			if (vals[i] >= 0)
				pid_put(m, keys[i], vals[i]);
		free(keys);
		free(vals);
	}
	size_t s = pid_slot(m, pid);
	while (m->pid_vals[s] >= 0 && m->pid_keys[s] != pid)
		s = (s + 1) & (m->cap_pids - 1);
	if (m->pid_vals[s] < 0)
		m->n_pids++;
	m->pid_keys[s] = pid;
	m->pid_vals[s] = proc;
}

static int pid_get(const struct bw_fx *m, long long pid)
{
	if (!m->cap_pids)
		return -1;
	for (size_t s = pid_slot(m, pid); m->pid_vals[s] >= 0; s = (s + 1) & (m->cap_pids - 1))
		if (m->pid_keys[s] == pid)
			return m->pid_vals[s];
	return -1;
}

static int new_proc(struct bw_fx *m, long long pid, const char *prog, int64_t us)
{
	if (m->n_procs == m->cap_procs) {
		m->cap_procs = m->cap_procs ? m->cap_procs * 2 : 16;
		m->procs = xrealloc(m->procs, m->cap_procs, sizeof *m->procs);
	}
	struct bw_fx_proc *p = &m->procs[m->n_procs];
	memset(p, 0, sizeof *p);
	p->pid = pid;
	p->prog = bw_fx_str(m, prog ? prog : "?");
	p->start_us = p->end_us = us;
	p->parent = -1;
	pid_put(m, pid, (int)m->n_procs);
	m->linked = 0;
	return (int)m->n_procs++;
}

/* The process an event of pid belongs to. */
static int proc_of(struct bw_fx *m, long long pid, const char *prog, int64_t us)
{
	int i = pid_get(m, pid);
	if (i < 0)
		i = new_proc(m, pid, prog, us);
	struct bw_fx_proc *p = &m->procs[i];
	if (us && (!p->start_us || us < p->start_us))
		p->start_us = us;
	if (us > p->end_us)
		p->end_us = us;
	return i;
}

static void add_calls(struct bw_fx *m, json_t *j, int proc)
{
	if (m->n_calls == m->cap_calls) {
		m->cap_calls = m->cap_calls ? m->cap_calls * 2 : 16;
		m->calls = xrealloc(m->calls, m->cap_calls, sizeof *m->calls);
	}
	struct bw_fx_calls *c = &m->calls[m->n_calls];
	memset(c, 0, sizeof *c);
	c->proc = proc;
	c->rule = bw_fx_str(m, str_of(j, "rule"));
	c->op = bw_fx_str(m, str_of(j, "op"));
	const char *d = str_of(j, "dest");
	d = d ? d : str_of(j, "host");
	d = d ? d : str_of(j, "db");
	c->dest = bw_fx_str(m, d);
	if (!c->op || !c->dest)
		return;
	c->calls = int_of(j, "calls", 0);
	c->failures = int_of(j, "failures", 0);
	c->peak_1s = int_of(j, "peak_1s", 0);
	c->active_s = int_of(j, "active_s", 0);
	c->first_us = us_of(str_of(j, "first"));
	c->last_us = us_of(str_of(j, "last"));
	c->max_ms = num_of(j, "max_ms");
	json_t *h = json_object_get(j, "hist"), *le = json_object_get(j, "le_ms");
	if (!json_is_array(h) || json_array_size(h) != BW_FX_BUCKETS || !json_is_array(le) ||
	    json_array_size(le) != BW_FX_BUCKETS - 1)
		return;          /* counts without a histogram still say how many */
	for (size_t b = 0; b < BW_FX_BUCKETS; b++) {
		long long v;
		c->hist[b] = whole(json_array_get(h, b), &v) && v > 0 ? v : 0;
		if (b < BW_FX_BUCKETS - 1) {
			json_t *x = json_array_get(le, b);
			c->le_ms[b] = json_is_number(x) ? json_number_value(x) : 0;
		}
	}
	c->n_le = BW_FX_BUCKETS - 1;
	m->n_calls++;
}

void bw_fx_add_json(struct bw_fx *m, const void *json, long long line)
{
	json_t *j = (json_t *)json;
	const char *event = str_of(j, "event"), *ts = str_of(j, "ts");
	long long pid;
	if (!event || !whole(json_object_get(j, "pid"), &pid))
		return;
	int64_t us = us_of(ts);
	const char *prog = str_of(j, "prog");
	if (strcmp(event, "start") == 0) {
		int i = new_proc(m, pid, prog, us);
		struct bw_fx_proc *p = &m->procs[i];
		p->started = 1;
		p->ppid = int_of(j, "ppid", 0);
		p->cmd_hash = bw_fx_str(m, str_of(j, "cmd_hash"));
		return;
	}
	int proc = proc_of(m, pid, prog, us);
	if (strcmp(event, "exit") == 0) {
		m->procs[proc].exited = 1;
		return;
	}
	if (strcmp(event, "calls") == 0) {
		add_calls(m, j, proc);
		return;
	}
	int kind = bw_fx_kind_of(event);
	if (kind == BW_FX_OTHER)
		return;
	if (m->n_evs == m->cap_evs) {
		m->cap_evs = m->cap_evs ? m->cap_evs * 2 : 64;
		m->evs = xrealloc(m->evs, m->cap_evs, sizeof *m->evs);
	}
	struct bw_fx_ev *e = &m->evs[m->n_evs++];
	memset(e, 0, sizeof *e);
	e->kind = (enum bw_fx_kind)kind;
	e->proc = proc;
	e->file = m->n_files ? (int)m->n_files - 1 : 0;
	e->line = line;
	e->us = us;
	e->ts = bw_fx_str(m, ts);
	e->rule = bw_fx_str(m, str_of(j, "rule"));
	e->op = bw_fx_str(m, str_of(j, "op"));
	e->call = bw_fx_str(m, str_of(j, "call"));
	const char *d = str_of(j, "dest");
	d = d ? d : str_of(j, "host");
	d = d ? d : str_of(j, "db");
	e->dest = bw_fx_str(m, d);
	e->err = bw_fx_str(m, str_of(j, "err"));
	e->reason = bw_fx_str(m, str_of(j, "reason"));
	e->from = bw_fx_str(m, str_of(j, "from"));
	e->to = bw_fx_str(m, str_of(j, "to"));
	e->n = int_of(j, "n", 0);
	if (e->n < 0)
		e->n = 0;
	e->attempt = int_of(j, "attempt", -1);
	e->failures = int_of(j, "failures", -1);
	e->delay_ms = num_of(j, "delay_ms");
	e->elapsed_ms = num_of(j, "elapsed_ms");
	e->observe = json_is_true(json_object_get(j, "observe"));
	e->injected = json_is_true(json_object_get(j, "injected"));
}
