/* `bulwark metrics` (bulwark(1), METRICS): the Prometheus text format for the live groups
 * of the host, read from their state files as `bulwark status` reads them: the status
 * families (health, breakers, tokens), the bulkheads' slots in use, the counters of each
 * rule (those of the exit event, which the processes add to the group's file as they go)
 * and the time of the calls each rule carried, per destination. Printed once, written to
 * a file atomically (--textfile, for node_exporter's textfile collector) or served over
 * HTTP (--listen), every scrape a fresh reading. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "breaker.h"
#include "cli.h"
#include "promout.h"
#include "status_model.h"

#define REQUEST_MAX 8192          /* a scrape's request head; more is not one */

static const struct option metrics_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "textfile", required_argument, NULL, 't' },
	{ "dir", required_argument, NULL, 'd' },
	{ "group", required_argument, NULL, 'g' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* As the exit event names them (engine/engine.c). */
static const char *const stat_names[BW_ST_COUNT] = {
	"calls", "failures", "retries", "recovered", "gave_up",
	"rejected", "throttled", "limited", "injected", "bulkhead_full", "shed",
};
static const char *const stat_help[BW_ST_COUNT] = {
	"Calls the rule matched, by its processes (exit event counters, as they go)",
	"Attempts that failed",
	"Attempts made again",
	"Calls that succeeded after a retry",
	"Calls given up on",
	"Calls an open breaker rejected",
	"Calls a rate limit made wait",
	"Calls a rate limit refused",
	"Faults injected",
	"Calls that found their bulkhead full",
	"Calls adaptive throttling rejected",
};

static void labels(FILE *out, const struct bw_st_group *g, const char *rule, const char *dest)
{
	fputs("{group=", out);
	bw_prom_label(out, g->group);
	fputs(",rule=", out);
	bw_prom_label(out, rule);
	if (dest) {
		fputs(",dest=", out);
		bw_prom_label(out, dest);
	}
}

/* st with at most BW_MET_DESTS lines of each rule of each group (the first by name): the
 * per-destination gauges of a rule that sees many destinations stay few, and the rule's
 * sums below (bulwark_rule_breakers, bulwark_rule_bulkhead_in_use) count them all. The
 * copy shares everything but the lines, which it owns. */
static int capped(const struct bw_status *st, struct bw_status *out)
{
	*out = *st;
	out->groups = calloc(st->n_groups ? st->n_groups : 1, sizeof *out->groups);
	if (!out->groups)
		return -1;
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		struct bw_st_group *c = &out->groups[i];
		*c = *g;
		c->dests = calloc(g->n_dests ? g->n_dests : 1, sizeof *c->dests);
		if (!c->dests)
			return -1;
		c->n_dests = 0;
		int rule = -1, n = 0;
		for (size_t j = 0; j < g->n_dests; j++) {
			if (g->dests[j].rule != rule) {
				rule = g->dests[j].rule;
				n = 0;
			}
			if (n++ < BW_MET_DESTS)
				c->dests[c->n_dests++] = g->dests[j];
		}
	}
	return 0;
}

static void free_capped(struct bw_status *c)
{
	for (size_t i = 0; c->groups && i < c->n_groups; i++)
		free(c->groups[i].dests);
	free(c->groups);
}

/* Per rule, over all its destinations: breakers by position, and slots in use. */
static void rule_sums(const struct bw_status *st, FILE *out)
{
	bw_prom_family(out, "bulwark_rule_breakers", "gauge",
		       "Breakers of a rule in each position, over all its destinations.");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t r = 0; g->live && r < g->n_rules; r++) {
			long n[3] = { 0, 0, 0 }, any = 0;
			for (size_t j = 0; j < g->n_dests; j++) {
				const struct bw_st_dest *d = &g->dests[j];
				if ((size_t)d->rule == r && d->has_breaker && d->pos >= 0 && d->pos < 3) {
					n[d->pos]++;
					any = 1;
				}
			}
			for (int k = 0; any && k < 3; k++) {
				fputs("bulwark_rule_breakers", out);
				labels(out, g, g->rules[r].name, NULL);
				fprintf(out, ",state=\"%s\"} %ld\n", bw_brk_name(k), n[k]);
			}
		}
	}
	bw_prom_family(out, "bulwark_rule_bulkhead_in_use", "gauge",
		       "Bulkhead slots held now over all the destinations of a rule.");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t r = 0; g->live && r < g->n_rules; r++) {
			long n = 0, any = 0;
			for (size_t j = 0; j < g->n_dests; j++) {
				const struct bw_st_dest *d = &g->dests[j];
				if ((size_t)d->rule == r && d->has_bulk) {
					n += d->in_use;
					any = 1;
				}
			}
			if (!any)
				continue;
			fputs("bulwark_rule_bulkhead_in_use", out);
			labels(out, g, g->rules[r].name, NULL);
			fprintf(out, "} %ld\n", n);
		}
	}
}

int bw_metrics_print(const struct bw_status *full, FILE *out)
{
	struct bw_status few;
	if (capped(full, &few) != 0) {
		free_capped(&few);
		return -1;
	}
	const struct bw_status *st = &few;
	bw_status_print_prom(st, out);
	rule_sums(full, out);

	bw_prom_family(out, "bulwark_bulkhead_in_use", "gauge",
		       "Bulkhead slots held now: connections open or calls in flight.");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t j = 0; g->live && j < g->n_dests; j++) {
			const struct bw_st_dest *d = &g->dests[j];
			if (!d->has_bulk)
				continue;
			fputs("bulwark_bulkhead_in_use", out);
			labels(out, g, g->rules[d->rule].name, d->dest);
			fprintf(out, "} %ld\n", d->in_use);
		}
	}
	bw_prom_family(out, "bulwark_bulkhead_max", "gauge", "Bulkhead size (concurrency.max).");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t j = 0; g->live && j < g->n_dests; j++) {
			const struct bw_st_dest *d = &g->dests[j];
			if (!d->has_bulk || !d->bulk_max)
				continue;
			fputs("bulwark_bulkhead_max", out);
			labels(out, g, g->rules[d->rule].name, d->dest);
			fprintf(out, "} %ld\n", d->bulk_max);
		}
	}

	for (int s = 0; s < BW_ST_COUNT; s++) {
		char name[64];
		snprintf(name, sizeof name, "bulwark_rule_%s_total", stat_names[s]);
		bw_prom_family(out, name, "counter", stat_help[s]);
		for (size_t i = 0; i < st->n_groups; i++) {
			const struct bw_st_group *g = &st->groups[i];
			for (size_t r = 0; g->live && r < g->n_rules; r++) {
				fputs(name, out);
				labels(out, g, g->rules[r].name, NULL);
				fprintf(out, "} %llu\n", (unsigned long long)g->rules[r].stats[s]);
			}
		}
	}

	bw_prom_family(out, "bulwark_dest_failed_calls_total", "counter",
		       "Calls the retry driver carried that ended in an error, per destination "
		       "(the first 16 of a rule, the rest as dest=\"other\").");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t r = 0; g->live && r < g->n_rules; r++)
			for (int k = 0; k < g->rules[r].n_met; k++) {
				const struct bw_st_met *m = &g->rules[r].met[k];
				fputs("bulwark_dest_failed_calls_total", out);
				labels(out, g, g->rules[r].name, m->dest);
				fprintf(out, "} %llu\n", (unsigned long long)m->failed);
			}
	}
	bw_prom_family(out, "bulwark_call_duration_seconds", "histogram",
		       "Time of the calls the retry driver carried, retries and waits included, "
		       "per destination (the first 16 of a rule, the rest as dest=\"other\").");
	for (size_t i = 0; i < st->n_groups; i++) {
		const struct bw_st_group *g = &st->groups[i];
		for (size_t r = 0; g->live && r < g->n_rules; r++)
			for (int k = 0; k < g->rules[r].n_met; k++) {
				const struct bw_st_met *m = &g->rules[r].met[k];
				const char *rule = g->rules[r].name;
				uint64_t cum = 0;
				for (int b = 0; b <= BW_MET_BUCKETS; b++) {
					cum += m->le[b];
					/* a reading caught between a call's bucket and its count
					 * never shows a bucket above the count */
					if (cum > m->calls)
						cum = m->calls;
					fputs("bulwark_call_duration_seconds_bucket", out);
					labels(out, g, rule, m->dest);
					if (b < BW_MET_BUCKETS)
						fprintf(out, ",le=\"%g\"} %llu\n",
							(double)bw_met_bounds_us[b] / 1e6,
							(unsigned long long)cum);
					else
						fprintf(out, ",le=\"+Inf\"} %llu\n",
							(unsigned long long)m->calls);
				}
				fputs("bulwark_call_duration_seconds_sum", out);
				labels(out, g, rule, m->dest);
				fprintf(out, "} %.6f\n", (double)m->sum_us / 1e6);
				fputs("bulwark_call_duration_seconds_count", out);
				labels(out, g, rule, m->dest);
				fprintf(out, "} %llu\n", (unsigned long long)m->calls);
			}
	}
	free_capped(&few);
	return 0;
}

/* One reading of every group, as text; NULL when out of memory. */
static char *render(const char *dir, const char *group, size_t *len)
{
	struct bw_status st;
	memset(&st, 0, sizeof st);
	snprintf(st.dir, sizeof st.dir, "%s", dir);
	st.want = group;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	bw_status_read(&st, group);
	bw_metrics_print(&st, f);
	bw_status_free(&st);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The whole reading to path, through a temporary file in its directory and a rename:
 * a collector never reads half a file. */
static int write_textfile(const char *path, const char *text, size_t len)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
		fprintf(stderr, "bulwark metrics: %s: path too long\n", path);
		return 1;
	}
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "bulwark metrics: %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	int bad = fwrite(text, 1, len, f) != len;
	bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (!bad && chmod(tmp, 0644) == 0 && rename(tmp, path) == 0)
		return 0;
	fprintf(stderr, "bulwark metrics: %s: %s\n", path, strerror(errno));
	unlink(tmp);
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One scrape: the request head read (bounded in size and time), a reading sent. */
static void serve_one(int c, const char *dir, const char *group)
{
	struct timeval tv = { 5, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	char req[REQUEST_MAX + 1];
	size_t got = 0;
	while (got < REQUEST_MAX) {
		ssize_t n = recv(c, req + got, REQUEST_MAX - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = '\0';
	const char *status = "200 OK";
	char *body = NULL;
	size_t len = 0;
	if (strncmp(req, "GET ", 4) != 0 && strncmp(req, "HEAD ", 5) != 0) {
		status = "405 Method Not Allowed";
	} else {
		const char *path = strchr(req, ' ') + 1;
		size_t plen = strcspn(path, " ?\r\n");
		if (!((plen == 8 && strncmp(path, "/metrics", 8) == 0) ||
		      (plen == 1 && path[0] == '/')))
			status = "404 Not Found";
		else if (!(body = render(dir, group, &len)))
			status = "500 Internal Server Error";
	}
	char head[256];
	int hn = snprintf(head, sizeof head,
			  "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; "
			  "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			  status, body ? len : 0);
	if (write_all(c, head, (size_t)hn) == 0 && body && strncmp(req, "HEAD ", 5) != 0)
		write_all(c, body, len);
	free(body);
}

static int listen_on(const char *spec)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	if (!colon || (size_t)(colon - spec) >= sizeof host) {
		fprintf(stderr, "bulwark metrics: --listen wants ADDRESS:PORT, not '%s'\n", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "bulwark metrics: --listen wants an IPv4 ADDRESS:PORT, not '%s'\n",
			spec);
		return -1;
	}
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(l, 16) != 0) {
		fprintf(stderr, "bulwark metrics: %s: %s\n", spec, strerror(errno));
		if (l >= 0)
			close(l);
		return -1;
	}
	return l;
}

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

int bw_cmd_metrics(int argc, char **argv)
{
	int c;
	const char *listen_at = NULL, *textfile = NULL, *dir_given = NULL, *group = NULL;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hl:t:d:g:", metrics_options, NULL)) != -1) {
		switch (c) {
		case 'l': listen_at = optarg; break;
		case 't': textfile = optarg; break;
		case 'd': dir_given = optarg; break;
		case 'g': group = optarg; break;
		case 'h': bw_usage(stdout); return 0;
		default: bw_option_error("metrics", argv, c); return 2;
		}
	}
	if (optind < argc || (listen_at && textfile)) {
		fprintf(stderr, "bulwark metrics: %s (see bulwark --help)\n",
			optind < argc ? "unexpected argument" : "--listen or --textfile, not both");
		return 2;
	}
	char dir[4096];
	if (bw_status_dir(dir_given, dir, sizeof dir) != 0) {
		fprintf(stderr, "bulwark metrics: no state directory\n");
		return 2;
	}
	if (!listen_at) {
		size_t len;
		char *text = render(dir, group, &len);
		if (!text) {
			fputs("bulwark metrics: out of memory\n", stderr);
			return 1;
		}
		int rc = textfile ? write_textfile(textfile, text, len)
				  : (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0);
		free(text);
		return rc;
	}
	int l = listen_on(listen_at);
	if (l < 0)
		return 2;
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!stopping) {
		int conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				usleep(100000);        /* out of something: not a busy loop */
				continue;
			}
			fprintf(stderr, "bulwark metrics: accept: %s\n", strerror(errno));
			break;
		}
		serve_one(conn, dir, group);
		close(conn);
	}
	close(l);
	return 0;
}
