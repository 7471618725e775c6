/* `bulwark report`: numbers, durations, times and names as the formats print them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "report.h"

#define BW_NOTE_WIDTH 79

void bw_rp_fmt_ms(char *buf, size_t cap, int64_t us)
{
	const char *sign = us < 0 ? "-" : "";
	uint64_t mag = us < 0 ? 0 - (uint64_t)us : (uint64_t)us;
	unsigned frac = (unsigned)(mag % 1000);
	if (!frac) {
		snprintf(buf, cap, "%s%llu", sign, (unsigned long long)(mag / 1000));
		return;
	}
	char f[4];
	snprintf(f, sizeof f, "%03u", frac);
	for (int i = 2; i > 0 && f[i] == '0'; i--)
		f[i] = '\0';
	snprintf(buf, cap, "%s%llu.%s", sign, (unsigned long long)(mag / 1000), f);
}

void bw_rp_fmt_dur(char *buf, size_t cap, int64_t us)
{
	double v = (double)us;
	if (us == 0)
		snprintf(buf, cap, "0");
	else if (us < 1000)
		snprintf(buf, cap, "%.2fms", v / 1e3);
	else if (us < 10000)
		snprintf(buf, cap, "%.1fms", v / 1e3);
	else if (us < 1000000)
		snprintf(buf, cap, "%.0fms", v / 1e3);
	else if (us < 60000000)
		snprintf(buf, cap, "%.1fs", v / 1e6);
	else if (us < INT64_C(3600000000))
		snprintf(buf, cap, "%.1fm", v / 6e7);
	else
		snprintf(buf, cap, "%.1fh", v / 3.6e9);
}

void bw_rp_fmt_count(char *buf, size_t cap, long long n)
{
	static const char units[] = "kMGTPE";
	if (n < 100000) {
		snprintf(buf, cap, "%lld", n);
		return;
	}
	/* Rounded down, so a count never reads as more than it is. */
	unsigned long long unit = 1000;
	int u = 0;
	while ((unsigned long long)n / unit >= 1000 && units[u + 1]) {
		unit *= 1000;
		u++;
	}
	unsigned long long whole = (unsigned long long)n / unit;
	if (whole < 10)
		snprintf(buf, cap, "%llu.%llu%c", whole,
			 (unsigned long long)n / (unit / 10) % 10, units[u]);
	else
		snprintf(buf, cap, "%llu%c", whole, units[u]);
}

/* n decimal digits at *p, advancing it; -1 if they are not all there. */
static int digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

int bw_rp_parse_ts(const char *s, int64_t *us)
{
	const char *p = s;
	int Y = digits(&p, 4);
	if (Y < 0 || *p++ != '-')
		return -1;
	int M = digits(&p, 2);
	if (M < 1 || M > 12 || *p++ != '-')
		return -1;
	int D = digits(&p, 2);
	if (D < 1 || D > 31 || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	int h = digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return -1;
	int m = digits(&p, 2);
	if (m < 0 || m > 59 || *p++ != ':')
		return -1;
	int sec = digits(&p, 2);
	if (sec < 0 || sec > 60)
		return -1;
	int64_t frac = 0;
	if (*p == '.') {
		p++;
		int n = 0;
		for (; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		if (!n)
			return -1;
		for (; n < 6; n++)
			frac *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int oh = digits(&p, 2);
		if (oh < 0 || oh > 23 || *p++ != ':')
			return -1;
		int om = digits(&p, 2);
		if (om < 0 || om > 59)
			return -1;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (*p)
		return -1;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
			 .tm_hour = h, .tm_min = m, .tm_sec = sec };
	/* timegm: UTC, whatever TZ says; the offset is applied by hand. */
	time_t t = timegm(&tm);
	*us = ((int64_t)t - off) * 1000000 + frac;
	return 0;
}

size_t bw_rp_width(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += (*p & 0xC0) != 0x80;
	return n;
}

/* Is the code point at p one a terminal would act on: C0, DEL, or C1 (U+0080..9F)? */
static size_t control_at(const unsigned char *p)
{
	if (*p < 0x20 || *p == 0x7F)
		return 1;
	if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
		return 2;
	return 0;
}

/* Copy n bytes if they fit, keeping out NUL-terminated; returns the new length. */
static size_t put(char *out, size_t cap, size_t len, const char *s, size_t n)
{
	if (len + n + 1 > cap)
		return len;
	memcpy(out + len, s, n);
	out[len + n] = '\0';
	return len + n;
}

void bw_rp_fit(char *out, size_t cap, const char *s, size_t width, int middle)
{
	if (!cap)
		return;
	out[0] = '\0';
	size_t n = strlen(s);
	char *clean = malloc(n + 1);
	if (!clean)
		return;
	size_t m = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t c = control_at(p);
		if (c) {
			clean[m++] = '?';
			p += c;
		} else {
			clean[m++] = (char)*p++;
		}
	}
	clean[m] = '\0';

	size_t w = bw_rp_width(clean);
	if (w <= width) {
		put(out, cap, 0, clean, m);
		free(clean);
		return;
	}
	if (width == 0) {
		free(clean);
		return;
	}
	/* keep width - 1 code points around the ellipsis (U+2026, one column) */
	size_t keep = width - 1;
	size_t head = middle ? (keep + 1) / 2 : keep, tail = keep - head;
	size_t hb = 0;           /* bytes of the first head code points */
	for (size_t cps = 0; hb < m; hb++) {
		if (((unsigned char)clean[hb] & 0xC0) != 0x80 && cps++ == head)
			break;
	}
	size_t tb = m;           /* start of the last tail code points */
	for (size_t cps = 0; cps < tail && tb > 0;) {
		tb--;
		if (((unsigned char)clean[tb] & 0xC0) != 0x80)
			cps++;
	}
	size_t len = put(out, cap, 0, clean, hb);
	len = put(out, cap, len, "\xE2\x80\xA6", 3);
	put(out, cap, len, clean + tb, m - tb);
	free(clean);
}

void bw_report_print_notes(const struct bw_report *r, FILE *out)
{
	for (size_t i = 0; i < r->n_notes; i++) {
		const char *p = r->notes[i];
		int first = 1;
		while (*p) {
			/* a line of at most 79 columns with its 2-column lead, cut at a space */
			size_t n = strlen(p), room = BW_NOTE_WIDTH - 2;
			if (n > room) {
				n = room;
				while (n > 0 && p[n] != ' ')
					n--;
				if (n == 0)
					n = room;
			}
			fprintf(out, "%s%.*s\n", first ? "- " : "  ", (int)n, p);
			p += n;
			while (*p == ' ')
				p++;
			first = 0;
		}
	}
}
