/* A private random source (splitmix64): never rand(), which would perturb the host's. */
#ifndef BW_RNG_H
#define BW_RNG_H

#include <stdint.h>

struct bw_rng { uint64_t s; };

static inline uint64_t bw_rng_next(struct bw_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double bw_rng_unit(struct bw_rng *r)
{
	return (double)(bw_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Mix several words into one seed (order matters). */
static inline uint64_t bw_mix(uint64_t a, uint64_t b)
{
	struct bw_rng r = { a ^ (b * 0xd6e8feb86659fd93ULL) };
	return bw_rng_next(&r);
}

#endif
