/* Symbolic error codes shared by policies, the engine and events. Every op's errors live
 * in one integer space, partitioned by where they come from, so a retry.on list can mix
 * them without ambiguity and each op (ops.h) names the spaces its calls end in:
 *
 *   errno            1 ..  9999       ECONNREFUSED
 *   EAI_*        10001 .. 10999       10000 - EAI_xxx (glibc's EAI values are negative)
 *   SQLite       20000 + code         extended codes: primary | sub << 8
 *   SQLSTATE     0x01000000 + base-36 of its 5 characters    SQLSTATE_57P03
 *   MySQL        0x05000000 + error number                    MYSQL_2013
 *   Redis        0x06000000 + index of an error reply prefix  REDIS_LOADING */
#ifndef BW_ERRNAMES_H
#define BW_ERRNAMES_H

#include <stddef.h>

#define BW_ERR_EAI_BASE      10000
#define BW_ERR_SQLITE_BASE   20000
#define BW_ERR_SQLSTATE_BASE 0x01000000
#define BW_ERR_MYSQL_BASE    0x05000000
#define BW_ERR_REDIS_BASE    0x06000000
#define BW_ERR_SPACE_END     0x07000000

enum bw_err_space {
	BW_SPACE_ERRNO = 1 << 0,
	BW_SPACE_EAI = 1 << 1,
	BW_SPACE_SQLITE = 1 << 2,
	BW_SPACE_SQLSTATE = 1 << 3,
	BW_SPACE_MYSQL = 1 << 4,
	BW_SPACE_REDIS = 1 << 5
};

static inline int bw_err_errno(int e) { return e; }
static inline int bw_err_eai(int eai) { return BW_ERR_EAI_BASE - eai; }
static inline int bw_err_sqlite(int rc) { return BW_ERR_SQLITE_BASE + rc; }
static inline int bw_err_mysql(int n) { return BW_ERR_MYSQL_BASE + n; }
static inline int bw_err_is_errno(int code) { return code > 0 && code < BW_ERR_EAI_BASE; }
static inline int bw_err_is_eai(int code) { return code > BW_ERR_EAI_BASE && code < BW_ERR_SQLITE_BASE; }
static inline int bw_err_is_sqlite(int code)
{
	return code >= BW_ERR_SQLITE_BASE && code < BW_ERR_SQLSTATE_BASE;
}
/* The space of a code (one enum bw_err_space bit), 0 for none. */
unsigned bw_err_space(int code);
/* A SQLSTATE ("57P03") as a code; 0 unless five characters of [0-9A-Z]. */
int bw_err_sqlstate(const char *state);

/* The code of a Redis error reply ("LOADING Redis is loading ...") by its first word, of
 * the n bytes at reply; 0 when that word is none of the known prefixes. */
int bw_err_redis_reply(const char *reply, size_t n);

/* Whether an error matches a listed code: the same code, or for SQLite a primary code
 * listed (SQLITE_BUSY) matches its extended codes (SQLITE_BUSY_SNAPSHOT), or a SQLSTATE
 * class's generic code listed (SQLSTATE_08000) matches every code of its class
 * (SQLSTATE_08006). */
int bw_err_matches(int listed, int err);

/* Name of a code ("ECONNREFUSED", "EAI_AGAIN", "SQLITE_BUSY", "SQLSTATE_57P03",
 * "MYSQL_2013", "REDIS_LOADING"); never NULL, async-signal-safe (unknown errno values
 * come out as "E?"; a made-up name is in a per-thread buffer until the next call). */
const char *bw_err_name(int code);
/* Parse a name; 0 if unknown. */
int bw_err_parse(const char *name);

#endif
