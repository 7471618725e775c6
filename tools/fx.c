/* The forensics model (fx.h): processes, events and measurements, and the small text
 * helpers its printers share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fx.h"
#include "ops.h"

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

void bw_fx_init(struct bw_fx *m)
{
	memset(m, 0, sizeof *m);
}

void bw_fx_free(struct bw_fx *m)
{
	for (size_t i = 0; i < m->n_strs; i++)
		free(m->strs[i]);
	free(m->strs);
	free(m->files);
	free(m->procs);
	free(m->evs);
	free(m->calls);
	free(m->pid_keys);
	free(m->pid_vals);
	memset(m, 0, sizeof *m);
}

const char *bw_fx_str(struct bw_fx *m, const char *s)
{
	if (!s)
		return NULL;
	if (m->n_strs == m->cap_strs) {
		m->cap_strs = m->cap_strs ? m->cap_strs * 2 : 64;
		m->strs = xrealloc(m->strs, m->cap_strs, sizeof *m->strs);
	}
	size_t n = strlen(s) + 1;
	char *d = xrealloc(NULL, n, 1);
	memcpy(d, s, n);
	m->strs[m->n_strs++] = d;
	return d;
}

void bw_fx_file(struct bw_fx *m, const char *name)
{
	m->files = xrealloc(m->files, m->n_files + 1, sizeof *m->files);
	m->files[m->n_files++] = bw_fx_str(m, name);
}

static const char *const kind_names[] = {
	[BW_FX_FAIL] = "fail", [BW_FX_RETRY] = "retry", [BW_FX_RECOVERED] = "recovered",
	[BW_FX_GAVE_UP] = "gave_up", [BW_FX_TIMEOUT] = "timeout", [BW_FX_BREAKER] = "breaker",
	[BW_FX_REJECTED] = "rejected", [BW_FX_THROTTLED] = "throttled",
	[BW_FX_LIMITED] = "limited", [BW_FX_FAILOVER] = "failover",
	[BW_FX_INJECTED] = "injected", [BW_FX_OUTAGE] = "outage", [BW_FX_OTHER] = "other",
};

int bw_fx_kind_of(const char *event)
{
	for (int k = 0; k < BW_FX_OTHER; k++)
		if (strcmp(kind_names[k], event) == 0)
			return k;
	return BW_FX_OTHER;
}

const char *bw_fx_kind_name(enum bw_fx_kind k)
{
	return (unsigned)k <= BW_FX_OTHER ? kind_names[k] : "other";
}

int bw_fx_op(const char *name)
{
	for (int i = 0; name && i < BW_OP_COUNT; i++)
		if (strcmp(bw_op_name(i), name) == 0)
			return i;
	return -1;
}

/* ---- runs ---- */

void bw_fx_link(struct bw_fx *m)
{
	if (m->linked)
		return;
	m->linked = 1;
	/* A parent is the latest process of the ppid that started before the child did, and
	 * was still there. Processes come in log order, which is start order for the
	 * processes of one writer; n is small enough for the plain search. */
	for (size_t i = 0; i < m->n_procs; i++) {
		struct bw_fx_proc *p = &m->procs[i];
		p->parent = -1;
		/* an image that exec replaced logs no exit: the new one goes on its tree */
		for (size_t j = i; p->started && j-- > 0;) {
			const struct bw_fx_proc *q = &m->procs[j];
			if (q->pid == p->pid) {
				if (!q->exited && q->started)
					p->parent = (int)j;
				break;
			}
		}
		if (p->parent >= 0 || !p->ppid)
			continue;
		for (size_t j = i; j-- > 0;) {
			const struct bw_fx_proc *q = &m->procs[j];
			if (q->pid == p->ppid && q->start_us <= p->start_us &&
			    (!q->exited || q->end_us >= p->start_us)) {
				p->parent = (int)j;
				break;
			}
		}
	}
	for (size_t i = 0; i < m->n_procs; i++) {
		struct bw_fx_proc *p = &m->procs[i];
		if (!p->started && p->parent < 0) {
			/* no start event (a child forked without exec, a log that began late):
			 * the run that was going on when it first showed */
			int best = -1;
			for (size_t j = 0; j < m->n_procs; j++)
				if (m->procs[j].started && m->procs[j].parent < 0 &&
				    m->procs[j].start_us <= p->start_us)
					best = (int)j;
			p->run = best >= 0 ? best : (int)i;
			continue;
		}
		int r = (int)i, hops = 0;
		while (m->procs[r].parent >= 0 && hops++ < 100000)
			r = m->procs[r].parent;
		p->run = r;
	}
}

/* ---- text ---- */

void bw_fx_yaml_str(FILE *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', out);
			fputc(*p, out);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\x%c%c", hex[*p >> 4], hex[*p & 15]);
		} else {
			fputc(*p, out);
		}
	}
	fputc('"', out);
}

void bw_fx_comment_text(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

int64_t bw_fx_nice_up_us(int64_t us)
{
	/* 1, 2, 5 x 10^k milliseconds, from 1 ms */
	int64_t step = 1000;
	for (;;) {
		if (us <= step)
			return step;
		if (us <= 2 * step)
			return 2 * step;
		if (us <= 5 * step)
			return 5 * step;
		if (step > INT64_MAX / 100)
			return us;
		step *= 10;
	}
}

void bw_fx_nice_dur(char *buf, size_t cap, int64_t us)
{
	int64_t v = bw_fx_nice_up_us(us);
	if (v % 1000000 == 0)
		snprintf(buf, cap, "%llds", (long long)(v / 1000000));
	else
		snprintf(buf, cap, "%lldms", (long long)(v / 1000));
}
