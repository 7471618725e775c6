/* Per-destination state, bounded: a set-associative table of at most max_keys entries,
 * where a new key evicts the least recently used entry of its set. Each set has its own
 * spin lock, so threads working on different destinations do not meet, and no lock is
 * held across a system call. */
#ifndef BW_KEYED_H
#define BW_KEYED_H

#include <stddef.h>
#include <stdint.h>

#define BW_KEYED_WAYS 8

struct bw_keyed {
	int sets;
	size_t vsize;            /* value bytes, rounded up to 8 */
	unsigned char *mem;      /* sets * ways entries: header then value */
	int *locks;
};

int bw_keyed_init(struct bw_keyed *k, int max_keys, size_t vsize);
void bw_keyed_free(struct bw_keyed *k);

/* Lock the entry for key and return its value, zeroed if the key is new. NULL when the lock
 * cannot be had within a bounded spin (a hook in a signal handler that interrupted the
 * holder): the caller then goes without. Unlock with the returned set number. */
void *bw_keyed_lock(struct bw_keyed *k, uint64_t key, int64_t now, int *set);
void bw_keyed_unlock(struct bw_keyed *k, int set);

/* Locks held by threads that do not exist in a forked child are released. */
void bw_keyed_after_fork(struct bw_keyed *k);
int bw_keyed_count(const struct bw_keyed *k);

/* 64-bit key of some bytes (never 0). */
uint64_t bw_key_bytes(const void *p, size_t n, uint64_t seed);

#endif
