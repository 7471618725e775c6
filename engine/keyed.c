/* The bounded per-destination table. Set-associative LRU: exact LRU within a set of
 * BW_KEYED_WAYS entries, which bounds memory and lookup cost at once. */
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include "keyed.h"

struct hdr {
	uint64_t key;            /* 0: empty */
	int64_t used;
};

/* Spin briefly (a holder keeps a lock for a few hundred instructions), then give the CPU
 * away: on a loaded machine the holder may have been preempted, and spinning only keeps
 * it off the CPU. Bounded in time, so a stopped holder delays a call, never hangs it. */
#define SPIN_TRIES 1000
#define WAIT_NS (200 * 1000000LL)

__thread int bw_spin_held __attribute__((tls_model("initial-exec")));

static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int take(int *lock, int expect, int self)
{
	if (!__atomic_compare_exchange_n(lock, &expect, self, 0, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return 0;
	bw_spin_held++;
	return 1;
}

int bw_spin_lock_wait(int *lock, int self, int (*alive)(long pid))
{
	for (int i = 0; i < SPIN_TRIES; i++)
		if (__atomic_load_n(lock, __ATOMIC_RELAXED) == 0 && take(lock, 0, self))
			return 0;
	if (bw_spin_held)
		return -1;
	int64_t start = mono_ns();
	for (unsigned n = 1;; n++) {
		if (n < 64)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
		if (take(lock, 0, self))
			return 0;
		if (n % 16)
			continue;
		/* the holder may have died holding it (another process killed mid-update):
		 * its half-made change is a few counters, which the next update corrects */
		int owner = __atomic_load_n(lock, __ATOMIC_RELAXED);
		if (owner && owner != self && alive && !alive(owner) && take(lock, owner, self))
			return 0;
		if (mono_ns() - start > WAIT_NS)
			return -1;
	}
}

size_t bw_keyed_entry_size(size_t vsize)
{
	return sizeof(struct hdr) + ((vsize + 7) & ~(size_t)7);
}

int bw_keyed_sets(int max_keys)
{
	int sets = (max_keys + BW_KEYED_WAYS - 1) / BW_KEYED_WAYS;
	return sets < 1 ? 1 : sets;
}

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
	k->sets = bw_keyed_sets(max_keys);
	k->vsize = (vsize + 7) & ~(size_t)7;
	k->self = 1;
	k->owned = 1;
	k->mem = calloc((size_t)k->sets * BW_KEYED_WAYS, entry_size(k));
	k->locks = calloc((size_t)k->sets, sizeof *k->locks);
	if (!k->mem || !k->locks) {
		bw_keyed_free(k);
		return -1;
	}
	return 0;
}

void bw_keyed_attach(struct bw_keyed *k, int sets, size_t vsize, void *mem, int *locks)
{
	int self = k->self ? k->self : 1;
	int (*alive)(long) = k->alive;
	int (*busy)(const void *) = k->busy;
	if (k->owned)
		bw_keyed_free(k);
	memset(k, 0, sizeof *k);
	k->sets = sets;
	k->vsize = (vsize + 7) & ~(size_t)7;
	k->mem = mem;
	k->locks = locks;
	k->self = self;
	k->alive = alive;
	k->busy = busy;
}

void bw_keyed_free(struct bw_keyed *k)
{
	if (k->owned) {
		free(k->mem);
		free(k->locks);
	}
	k->mem = NULL;
	k->locks = NULL;
	k->owned = 0;
}

void *bw_keyed_lock(struct bw_keyed *k, uint64_t key, int64_t now, int *set)
{
	int s = (int)((key >> 17) % (uint64_t)k->sets);
	if (bw_spin_lock(&k->locks[s], k->self, k->alive) < 0)
		return NULL;
	*set = s;
	struct hdr *victim = NULL;
	for (int w = 0; w < BW_KEYED_WAYS; w++) {
		struct hdr *h = entry(k, s, w);
		if (h->key == key) {
			h->used = now;
			return h + 1;
		}
		/* an empty way first, else the least recently used that is not busy */
		if (h->key != 0 && k->busy && k->busy(h + 1))
			continue;
		if (!victim || (victim->key != 0 && (h->key == 0 || h->used < victim->used)))
			victim = h;
	}
	if (!victim) {
		bw_spin_unlock(&k->locks[s]);
		return NULL;
	}
	victim->key = key;
	victim->used = now;
	memset(victim + 1, 0, k->vsize);
	return victim + 1;
}

const uint64_t *bw_keyed_key_of(const void *v)
{
	return &((const struct hdr *)v - 1)->key;
}

void bw_keyed_unlock(struct bw_keyed *k, int set)
{
	bw_spin_unlock(&k->locks[set]);
}

void bw_keyed_after_fork(struct bw_keyed *k, int self)
{
	/* a private table was copied with locks other threads held; a shared one is still
	 * shared with the parent, whose threads will release what they hold */
	for (int s = 0; k->owned && k->locks && s < k->sets; s++)
		k->locks[s] = 0;
	if (!k->owned)
		k->self = self;
}

void bw_keyed_each(const struct bw_keyed *k, void (*fn)(const void *value, void *arg),
		   void *arg)
{
	for (int s = 0; k->mem && s < k->sets; s++)
		for (int w = 0; w < BW_KEYED_WAYS; w++) {
			struct hdr *h = entry(k, s, w);
			if (__atomic_load_n(&h->key, __ATOMIC_RELAXED))
				fn(h + 1, arg);
		}
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
