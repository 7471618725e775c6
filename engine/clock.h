/* The machine's clocks in microseconds: what the shim hands the engine (struct bw_env),
 * and what the tools stamp files and read state with. The engine itself never reads a
 * clock but through bw_env, so that unit tests can drive it with a fake one. */
#ifndef BW_CLOCK_H
#define BW_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t bw_clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
