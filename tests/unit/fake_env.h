/* A deterministic bw_env for engine tests: a clock that moves only when told or slept,
 * and a capture of emitted events. */
#ifndef BW_FAKE_ENV_H
#define BW_FAKE_ENV_H

#include <string.h>
#include "engine.h"

static int64_t fake_now;
static int64_t fake_slept_total;
static int fake_sleeps;
static char fake_log[65536];
static size_t fake_log_len;

static int64_t fake_mono(void) { return fake_now; }
static int64_t fake_wall(void) { return 1764057600000000LL + fake_now; }
static void fake_sleep(int64_t us) { fake_now += us; fake_slept_total += us; fake_sleeps++; }
static long fake_tid(void) { return 42; }
/* A signal handler "runs" this far into the next interruptible sleep (-1: none); the
 * sleep then returns the time it had left, as the shim's does. */
static int64_t fake_signal_after = -1;
static int64_t fake_nap(int64_t us)
{
	if (fake_signal_after < 0 || fake_signal_after >= us) {
		fake_sleep(us);
		return 0;
	}
	int64_t done = fake_signal_after;
	fake_signal_after = -1;
	fake_now += done;
	fake_slept_total += done;
	fake_sleeps++;
	return us - done;
}
static void fake_emit(enum bw_level lvl, const char *line, size_t len)
{
	(void)lvl;
	if (fake_log_len + len < sizeof fake_log) {
		memcpy(fake_log + fake_log_len, line, len);
		fake_log_len += len;
		fake_log[fake_log_len] = '\0';
	}
}

static const struct bw_env fake_env = { fake_mono, fake_wall, fake_sleep, fake_emit, fake_tid,
					fake_nap };

static inline void fake_reset(void)
{
	fake_now = 1000000000;
	fake_slept_total = 0;
	fake_sleeps = 0;
	fake_signal_after = -1;
	fake_log_len = 0;
	fake_log[0] = '\0';
}

/* How many lines of the log contain s. */
static inline int fake_count(const char *s)
{
	int n = 0;
	for (const char *p = fake_log; (p = strstr(p, s)); p += strlen(s))
		n++;
	return n;
}

#endif
