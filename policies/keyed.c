/* The bounded per-destination table. Set-associative LRU: exact LRU within a set of
 * BW_KEYED_WAYS entries, which bounds memory and lookup cost at once. */
#include <stdlib.h>
#include <string.h>
#include "keyed.h"

struct hdr {
	uint64_t key;            /* 0: empty */
	int64_t used;
};

#define SPIN_LIMIT 100000

static size_t entry_size(const struct bw_keyed *k)
{
	return sizeof(struct hdr) + k->vsize;
}

static struct hdr *entry(const struct bw_keyed *k, int set, int way)
{
	return (struct hdr *)(k->mem + ((size_t)set * BW_KEYED_WAYS + (size_t)way) * entry_size(k));
}

int bw_keyed_init(struct bw_keyed *k, int max_keys, size_t vsize)
{
	memset(k, 0, sizeof *k);
	k->sets = (max_keys + BW_KEYED_WAYS - 1) / BW_KEYED_WAYS;
	if (k->sets < 1)
		k->sets = 1;
	k->vsize = (vsize + 7) & ~(size_t)7;
	k->mem = calloc((size_t)k->sets * BW_KEYED_WAYS, entry_size(k));
	k->locks = calloc((size_t)k->sets, sizeof *k->locks);
	if (!k->mem || !k->locks) {
		bw_keyed_free(k);
		return -1;
	}
	return 0;
}

void bw_keyed_free(struct bw_keyed *k)
{
	free(k->mem);
	free(k->locks);
	k->mem = NULL;
	k->locks = NULL;
}

void *bw_keyed_lock(struct bw_keyed *k, uint64_t key, int64_t now, int *set)
{
	int s = (int)((key >> 17) % (uint64_t)k->sets);
	int spins = 0;
	while (__atomic_exchange_n(&k->locks[s], 1, __ATOMIC_ACQUIRE))
		if (++spins > SPIN_LIMIT)
			return NULL;
	*set = s;
	struct hdr *victim = NULL;
	for (int w = 0; w < BW_KEYED_WAYS; w++) {
		struct hdr *h = entry(k, s, w);
		if (h->key == key) {
			h->used = now;
			return h + 1;
		}
		/* an empty way first, else the least recently used */
		if (!victim || (victim->key != 0 && (h->key == 0 || h->used < victim->used)))
			victim = h;
	}
	victim->key = key;
	victim->used = now;
	memset(victim + 1, 0, k->vsize);
	return victim + 1;
}

void bw_keyed_unlock(struct bw_keyed *k, int set)
{
	__atomic_store_n(&k->locks[set], 0, __ATOMIC_RELEASE);
}

void bw_keyed_after_fork(struct bw_keyed *k)
{
	for (int s = 0; k->locks && s < k->sets; s++)
		k->locks[s] = 0;
}

int bw_keyed_count(const struct bw_keyed *k)
{
	int n = 0;
	for (int s = 0; k->mem && s < k->sets; s++)
		for (int w = 0; w < BW_KEYED_WAYS; w++)
			n += entry(k, s, w)->key != 0;
	return n;
}

uint64_t bw_key_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h ? h : 1;
}
