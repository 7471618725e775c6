/* `bulwark status`: finding the group state files and reading them.
 *
 * A file is read whole into memory with pread and everything is taken from that copy.
 * Mapping it would touch the same pages (the keyed tables are walked entry by entry),
 * but a file cut short under a mapping raises SIGBUS, where a short read is just a file
 * to skip. Nothing is locked and nothing is written: the library's processes never
 * wait for `bulwark status`, and what it shows is a moment's reading, a figure possibly
 * caught half-way through an update.
 *
 * Every offset and count in a file is checked against its size before use: the file is
 * the library's, but a crash, another version or another program can leave anything. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "shared.h"
#include "clock.h"
#include "status_model.h"

#define STATE_SUFFIX BW_STATE_SUFFIX
#define MAX_FILE_BYTES ((int64_t)1 << 30)   /* far above any policy's layout */
/* A pid whose process started this long after the slot was written was reused: the
 * process that wrote it died. The slack absorbs the 1 s grain of the boot time and a
 * small step of the wall clock. */
#define REUSE_SLACK_US 10000000
/* started_us below this (2001) is not a wall-clock time: no reuse check then. */
#define WALL_EPOCH_US INT64_C(1000000000000000)

const char *bw_health_name(enum bw_health h)
{
	static const char *const names[] = { "healthy", "degraded", "unhealthy", "unknown" };
	return h <= BW_UNKNOWN ? names[h] : "unknown";
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fputs("bulwark status: out of memory\n", stderr);
		exit(BW_UNKNOWN);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	return strcpy(xcalloc(strlen(s) + 1, 1), s);
}

/* a + b and a - b, held at the ends of int64_t: times from a damaged file must not
 * overflow */
static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* ---- text ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0) {
		len = 2, cp = p[0] & 0x1F, min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		len = 3, cp = p[0] & 0x0F, min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		len = 4, cp = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* A name from the file (at most n bytes, NUL-terminated or not) as valid UTF-8 without
 * control characters: every other byte becomes '?'. Never cut inside a character. */
void bw_st_clean(char *dst, size_t cap, const char *src, size_t n)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t end = strnlen(src, n), i = 0, o = 0;
	while (i < end) {
		size_t len = utf8_len(p + i, end - i);
		int bad = len == 0 || p[i] < 0x20 || p[i] == 0x7F ||
			  (len == 2 && p[i] == 0xC2 && p[i + 1] <= 0x9F);
		size_t take = bad ? 1 : len;
		if (o + take + 1 > cap)
			break;
		if (bad)
			dst[o] = '?';
		else
			memcpy(dst + o, p + i, len);
		o += take;
		i += bad ? (len ? len : 1) : len;
	}
	dst[o] = '\0';
}

void bw_st_fmt_time(char *buf, size_t cap, int64_t wall_us)
{
	if (wall_us <= 0) {
		snprintf(buf, cap, "-");
		return;
	}
	time_t t = (time_t)(wall_us / 1000000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "-");
}

void bw_st_fmt_tokens(char *buf, size_t cap, double v)
{
	static const char units[] = "kMGTPE";
	if (v < 0)
		v = 0;
	if (v < 100) {
		snprintf(buf, cap, "%.1f", v);
		return;
	}
	if (v < 100000) {
		snprintf(buf, cap, "%.0f", v);
		return;
	}
	int u = 0;
	v /= 1000;
	while (v >= 1000 && units[u + 1]) {
		v /= 1000;
		u++;
	}
	snprintf(buf, cap, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* ---- where ---- */

int bw_status_dir(const char *given, char *out, size_t cap)
{
	if (given) {
		int n = snprintf(out, cap, "%s", given);
		return n < 0 || (size_t)n >= cap ? -1 : 0;
	}
	/* the library's own rule, so that both always look in the same place */
	return bw_state_dir(NULL, getenv("XDG_RUNTIME_DIR"), (unsigned)getuid(), out, cap);
}

/* ---- processes ---- */

int64_t bw_st_boot_us(void)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[256];
	long long btime = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	return (int64_t)btime * 1000000;
}

/* Is the process that wrote this slot still there? A pid that exists may have been
 * reused since (a stale file from before a reboot, on a /tmp that survives it): the
 * library records the tick its process started, which must match, and in a slot without
 * one (a file by hand or an older library) the process must not have started after the
 * slot was written. A zombie has died already. */
int bw_st_proc_alive(const struct bw_st_proc *p, int64_t boot_us)
{
	long pid = p->pid;
	if (pid <= 0 || kill((pid_t)pid, 0) != 0) {
		if (pid <= 0 || errno != EPERM)
			return 0;
	}
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;                    /* no /proc: what kill says */
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	char state;
	unsigned long long ticks;
	if (bw_proc_stat_parse(buf, &state, &ticks) < 0)
		return 1;
	if (state == 'Z' || state == 'X' || state == 'x')
		return 0;
	if (p->start_ticks)
		return p->start_ticks == (uint32_t)ticks;
	long tck = sysconf(_SC_CLK_TCK);
	if (tck <= 0 || boot_us <= 0 || p->started_us < WALL_EPOCH_US)
		return 1;
	int64_t began = boot_us + (int64_t)(ticks / (unsigned long long)tck) * 1000000 +
			(int64_t)(ticks % (unsigned long long)tck) * 1000000 / tck;
	return began <= sat_add(p->started_us, REUSE_SLACK_US);
}

static int by_pid(const void *a, const void *b)
{
	const struct bw_st_proc *p = a, *q = b;
	if (p->pid != q->pid)
		return (p->pid > q->pid) - (p->pid < q->pid);
	return (p->started_us > q->started_us) - (p->started_us < q->started_us);
}

/* A process that execs joins again under its new program, and the slot of the image it
 * replaced is never given back (no exit handler runs across exec): one pid, several
 * slots. It is one process, running the program of its latest slot. */
static size_t one_per_pid(struct bw_st_proc *v, size_t n)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		if (out && v[out - 1].pid == v[i].pid)
			out--;
		v[out++] = v[i];
	}
	return out;
}

/* The process table of a verified file: one entry a process, each found alive or not. */
static void read_procs(struct bw_st_group *g, const char *mem, int64_t boot_us)
{
	const struct bw_shm_header *h = (const void *)mem;
	const struct bw_shm_proc *procs = (const void *)(mem + h->procs_off);
	g->procs = xcalloc(h->n_procs, sizeof *g->procs);
	for (uint32_t i = 0; i < h->n_procs; i++) {
		if (procs[i].pid == 0)
			continue;
		struct bw_st_proc *p = &g->procs[g->n_procs++];
		p->pid = procs[i].pid;
		p->start_ticks = procs[i].start_ticks;
		p->started_us = procs[i].started_us;
		bw_st_clean(p->prog, sizeof p->prog, procs[i].prog, sizeof procs[i].prog);
	}
	qsort(g->procs, g->n_procs, sizeof *g->procs, by_pid);
	g->n_procs = one_per_pid(g->procs, g->n_procs);
	for (size_t i = 0; i < g->n_procs; i++) {
		struct bw_st_proc *p = &g->procs[i];
		p->alive = bw_st_proc_alive(p, boot_us);
		g->alive += (size_t)p->alive;
	}
	g->live = g->alive > 0;
}

/* ---- destinations ---- */

struct collect {
	struct bw_st_group *g;
	size_t cap;
	int rule;
	struct bw_dest_state *raw;        /* parallel to g->dests */
};

static void add_dest(struct collect *c, const struct bw_dest_state *s, int whole)
{
	struct bw_st_group *g = c->g;
	if (g->n_dests == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		g->dests = realloc(g->dests, c->cap * sizeof *g->dests);
		c->raw = realloc(c->raw, c->cap * sizeof *c->raw);
		if (!g->dests || !c->raw) {
			fputs("bulwark status: out of memory\n", stderr);
			exit(BW_UNKNOWN);
		}
	}
	struct bw_st_dest *d = &g->dests[g->n_dests];
	memset(d, 0, sizeof *d);
	memcpy(&c->raw[g->n_dests], s, sizeof *s);
	d->rule = c->rule;
	d->whole = whole;
	if (whole)
		snprintf(d->dest, sizeof d->dest, "(rule)");
	else
		bw_st_clean(d->dest, sizeof d->dest, s->label, sizeof s->label);
	if (!d->dest[0])
		snprintf(d->dest, sizeof d->dest, "?");
	g->n_dests++;
}

/* Every cell the store shows, whole or per destination, in rule order. */
static void each_cell(const struct bw_cell_view *v, void *arg)
{
	struct collect *c = arg;
	c->rule = v->slot;
	add_dest(c, v->st, v->whole);
}

static int zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The figures of one line, from its raw state, the policy's rule (NULL: unknown) and
 * the monotonic time now. */
static void derive(struct bw_st_dest *d, const struct bw_dest_state *s,
		   const struct bw_rule *r, int64_t now)
{
	const struct bw_breaker_state *b = &s->brk;
	int brk_used = !zero(b, sizeof *b);
	int bkt_used = !zero(&s->bucket, sizeof s->bucket);
	enum bw_scope want = d->whole ? BW_SCOPE_RULE : BW_SCOPE_DEST;

	d->has_breaker = brk_used || (r && r->breaker.enabled && r->breaker.scope == want);
	d->pos = b->pos >= BW_BRK_CLOSED && b->pos <= BW_BRK_HALF_OPEN ? b->pos : -1;
	d->consecutive = b->consecutive;
	d->window_known = r && r->breaker.enabled && r->breaker.window > 0;
	int64_t len = d->window_known ? r->breaker.window / BW_BRK_SLOTS : 0;
	if (len < 1)
		len = 1;
	int64_t cur = now / len;
	for (int i = 0; i < BW_BRK_SLOTS; i++) {
		/* the same slots the breaker itself would count now */
		if (d->window_known && (b->win[i].slot <= cur - BW_BRK_SLOTS || b->win[i].slot > cur))
			continue;
		if (b->win[i].calls > 0)
			d->window_calls += b->win[i].calls;
		if (b->win[i].fails > 0)
			d->window_fails += b->win[i].fails;
	}
	d->open_for_us = b->open_for;
	d->open_left_us = sat_sub(sat_add(b->opened_at, b->open_for), now);

	const struct bw_rate_limit *rl = r ? &r->rate_limit : NULL;
	int rl_here = rl && rl->enabled &&
		      (d->whole ? rl->scope != BW_SCOPE_DEST : rl->scope == BW_SCOPE_DEST);
	d->has_bucket = bkt_used || rl_here;
	/* a figure written after `now` was taken is as fresh as can be */
	d->tokens_age_us = s->bucket.last ? (now > s->bucket.last ? sat_sub(now, s->bucket.last) : 0)
					  : -1;
	double stored = isfinite(s->bucket.tokens) ? s->bucket.tokens : 0;
	if (rl_here && rl->rate > 0 && rl->burst > 0) {
		/* the bucket's own refill (engine/bucket.c), done on a copy */
		double t = stored;
		if (s->bucket.last == 0)
			t = rl->burst;
		else if (now > s->bucket.last)
			t += (double)d->tokens_age_us * rl->rate / 1e6;
		d->tokens = t > rl->burst ? rl->burst : t < 0 ? 0 : t;
		d->bucket_known = 1;
		d->rate = rl->rate;
		d->burst = rl->burst;
		d->bytes = rl->bytes;
	} else {
		d->tokens = stored;
	}

	const struct bw_concurrency *cc = r ? &r->concurrency : NULL;
	d->in_use = s->bulk.in_use > 0 ? s->bulk.in_use : 0;
	d->bulk_max = s->bulk.max > 0 ? s->bulk.max : 0;
	if (cc && cc->enabled && cc->scope == want)
		d->bulk_max = cc->max;
	d->has_bulk = d->in_use || d->bulk_max;

	if (!d->has_breaker)
		d->health = BW_UNKNOWN;
	else if (d->pos == BW_BRK_CLOSED)
		d->health = BW_HEALTHY;
	else if (d->pos == BW_BRK_HALF_OPEN)
		d->health = BW_DEGRADED;
	else if (d->pos == BW_BRK_OPEN)
		d->health = BW_UNHEALTHY;
	else
		d->health = BW_UNKNOWN;
}

static int by_rule_dest(const void *a, const void *b)
{
	const struct bw_st_dest *x = a, *y = b;
	if (x->rule != y->rule)
		return x->rule - y->rule;
	if (x->whole != y->whole)
		return y->whole - x->whole;
	return strcmp(x->dest, y->dest);
}

enum bw_health bw_health_of(const long breakers[3])
{
	long total = breakers[0] + breakers[1] + breakers[2];
	if (breakers[BW_BRK_CLOSED] == total)
		return BW_HEALTHY;                /* also with no breaker at all */
	if (breakers[BW_BRK_OPEN] == total)
		return BW_UNHEALTHY;
	return BW_DEGRADED;
}

/* ---- one file ---- */

static void note(const char *path, const char *why)
{
	fprintf(stderr, "bulwark status: %s: skipped: %s\n", path, why);
}

/* Read the whole file open at fd; NULL with why when it cannot be. */
static char *slurp_fd(int fd, uint64_t *size_out, const char **why)
{
	struct stat sb;
	char *mem = NULL;
	*why = NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		*why = "not a regular file";
	} else if ((uint64_t)sb.st_size < sizeof(struct bw_shm_header)) {
		*why = "too small to be a state file";
	} else if (sb.st_size > MAX_FILE_BYTES) {
		*why = "too large to be a state file";
	} else {
		size_t size = (size_t)sb.st_size, got = 0;
		mem = xcalloc(size, 1);
		while (got < size) {
			ssize_t n = pread(fd, mem + got, size - got, (off_t)got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < sizeof(struct bw_shm_header)) {
			*why = "cut short while being read";
			free(mem);
			mem = NULL;
		}
		*size_out = got;
	}
	return mem;
}

/* Read the whole file; NULL (and a note) when it cannot be. */
static char *slurp(const char *path, uint64_t *size_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		/* removed since the directory was listed: the group just ended */
		if (errno != ENOENT)
			note(path, strerror(errno));
		return NULL;
	}
	const char *why;
	char *mem = slurp_fd(fd, size_out, &why);
	close(fd);
	if (why)
		note(path, why);
	return mem;
}

int bw_st_fd_live(int fd, int64_t boot_us, const char **why)
{
	uint64_t size = 0;
	char *mem = slurp_fd(fd, &size, why);
	if (!mem)
		return -1;
	if ((*why = bw_shm_verify(mem, size)) != NULL) {
		free(mem);
		return -1;
	}
	struct bw_st_group g;
	memset(&g, 0, sizeof g);
	read_procs(&g, mem, boot_us);
	free(g.procs);
	free(mem);
	return g.live;
}

static struct bw_config *policy_of(const char *policy)
{
	struct bw_diags diags = { .n = 0 };
	if (!policy[0])
		return NULL;
	if (strcmp(policy, "<default>") == 0)
		return bw_config_default();
	return bw_config_load_file(policy, &diags);
}

/* Read one file into a new group of st; skipped (0) when it is not one, or not the
 * group asked for. */
static void read_group(struct bw_status *st, const char *path, const char *base,
		       const char *want, int64_t boot_us)
{
	uint64_t size = 0;
	char *mem = slurp(path, &size);
	if (!mem)
		return;
	/* the moment of this reading: each file's figures are brought up to when it was read */
	int64_t now = bw_clock_us(CLOCK_MONOTONIC);
	const char *why = bw_shm_verify(mem, size);
	if (why) {
		note(path, why);
		free(mem);
		return;
	}
	const struct bw_shm_header *h = (const void *)mem;
	char name[sizeof h->group + 1];
	memcpy(name, h->group, sizeof h->group);
	name[sizeof h->group] = '\0';
	/* the file's name is the group's; the header holds it too */
	size_t blen = strlen(base) - strlen(STATE_SUFFIX);
	if (want && strcmp(name, want) != 0 &&
	    !(strlen(want) == blen && strncmp(base, want, blen) == 0)) {
		free(mem);
		return;
	}

	struct bw_st_group *g = &st->groups[st->n_groups];
	memset(g, 0, sizeof *g);
	g->file = xstrdup(path);
	g->created_us = h->created_us;
	bw_st_clean(g->group, sizeof g->group, name[0] ? name : base, name[0] ? sizeof name : blen);
	bw_st_clean(g->policy, sizeof g->policy, h->policy, sizeof h->policy);

	read_procs(g, mem, boot_us);

	/* The policy gives the buckets' rate and burst and the breakers' window; it counts
	 * only while it still lays out the same file (same rules, same order). */
	char policy[sizeof h->policy + 1];
	memcpy(policy, h->policy, sizeof h->policy);
	policy[sizeof h->policy] = '\0';
	struct bw_config *cfg = policy_of(policy);
	if (cfg && bw_shm_check(mem, size, cfg) != 0) {
		if (g->live)
			fprintf(stderr, "bulwark status: group %s: %s no longer matches the state "
				"file: tokens shown as stored\n", g->group, g->policy);
		bw_config_free(cfg);
		cfg = NULL;
	} else if (!cfg && g->live && policy[0]) {
		fprintf(stderr, "bulwark status: group %s: %s cannot be read: tokens shown as "
			"stored\n", g->group, g->policy);
	}
	g->policy_loaded = cfg != NULL;

	g->n_rules = h->n_rules;
	g->rules = xcalloc(h->n_rules, sizeof *g->rules);
	struct bw_shm_rule *rules = (void *)(mem + h->rules_off);
	struct collect c = { g, 0, 0, NULL };
	for (uint32_t i = 0; i < h->n_rules; i++) {
		struct bw_st_rule *sr = &g->rules[i];
		const struct bw_shm_met *m = &rules[i].met;
		bw_st_clean(sr->name, sizeof sr->name, rules[i].name, sizeof rules[i].name);
		memcpy(sr->stats, m->stats, sizeof sr->stats);
		for (int j = 0; j <= BW_MET_DESTS; j++) {
			const struct bw_shm_met_dest *md = &m->dest[j];
			if (!md->calls)
				continue;
			struct bw_st_met *o = &sr->met[sr->n_met++];
			if (j == BW_MET_DESTS)
				snprintf(o->dest, sizeof o->dest, "other");
			else
				bw_st_clean(o->dest, sizeof o->dest, md->label, sizeof md->label);
			/* a row caught between its claim and its label: named by its key,
			 * as two such rows must not read as one series */
			if (!o->dest[0])
				snprintf(o->dest, sizeof o->dest, "?%016llx",
					 (unsigned long long)md->key);
			o->calls = md->calls;
			o->failed = md->failed;
			o->sum_us = md->sum_us;
			memcpy(o->le, md->le, sizeof o->le);
		}
	}
	/* read through the store, as the library reads and writes it */
	struct bw_store view;
	bw_store_view(&view, mem);
	bw_store_snapshot(&view, each_cell, &c);
	bw_store_fini(&view);
	for (size_t i = 0; i < g->n_dests; i++) {
		struct bw_st_dest *d = &g->dests[i];
		derive(d, &c.raw[i], cfg ? &cfg->rules[d->rule] : NULL, now);
		if (d->has_breaker && d->pos >= 0)
			g->breakers[d->pos]++;
	}
	free(c.raw);
	if (g->n_dests)
		qsort(g->dests, g->n_dests, sizeof *g->dests, by_rule_dest);
	g->health = bw_health_of(g->breakers);
	if (cfg)
		bw_config_free(cfg);
	free(mem);
	st->n_groups++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_group(const void *a, const void *b)
{
	const struct bw_st_group *x = a, *y = b;
	int c = strcmp(x->group, y->group);
	return c ? c : strcmp(x->file, y->file);
}

int bw_status_read(struct bw_status *st, const char *group)
{
	st->now_mono_us = bw_clock_us(CLOCK_MONOTONIC);
	st->now_wall_us = bw_clock_us(CLOCK_REALTIME);
	st->health = BW_UNKNOWN;
	DIR *dir = opendir(st->dir);
	if (!dir) {
		if (errno == ENOENT)
			return 0;            /* no group has run here yet */
		fprintf(stderr, "bulwark status: %s: %s\n", st->dir, strerror(errno));
		st->dir_error = 1;
		return -1;
	}
	st->dir_exists = 1;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	size_t slen = strlen(STATE_SUFFIX);
	while ((de = readdir(dir))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= slen ||
		    strcmp(de->d_name + len - slen, STATE_SUFFIX) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof *names);
			if (!names) {
				fputs("bulwark status: out of memory\n", stderr);
				exit(BW_UNKNOWN);
			}
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof *names, by_name);

	st->groups = xcalloc(n, sizeof *st->groups);
	int64_t boot_us = bw_st_boot_us();
	for (size_t i = 0; i < n; i++) {
		char path[sizeof st->dir + 256];
		snprintf(path, sizeof path, "%s/%s", st->dir, names[i]);
		read_group(st, path, names[i], group, boot_us);
		free(names[i]);
	}
	free(names);
	if (st->n_groups)
		qsort(st->groups, st->n_groups, sizeof *st->groups, by_group);

	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		if (!g->live) {
			st->stale++;
			continue;
		}
		st->live++;
		for (int p = 0; p < 3; p++)
			st->breakers[p] += g->breakers[p];
	}
	st->health = st->live ? bw_health_of(st->breakers) : BW_UNKNOWN;
	return 0;
}

void bw_status_free(struct bw_status *st)
{
	for (size_t i = 0; i < st->n_groups; i++) {
		free(st->groups[i].file);
		free(st->groups[i].procs);
		free(st->groups[i].rules);
		free(st->groups[i].dests);
	}
	free(st->groups);
	st->groups = NULL;
	st->n_groups = 0;
}
