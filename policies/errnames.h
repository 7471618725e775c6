/* Symbolic error names shared by policies and events: errno, EAI_* and SQLITE_* values
 * live in one integer space so a retry.on list can mix them without ambiguity. */
#ifndef BW_ERRNAMES_H
#define BW_ERRNAMES_H

#define BW_ERR_EAI_BASE    10000   /* 10000 - EAI_xxx (glibc's EAI values are negative) */
#define BW_ERR_SQLITE_BASE 20000   /* 20000 + SQLite (extended) result code */

static inline int bw_err_errno(int e) { return e; }
static inline int bw_err_eai(int eai) { return BW_ERR_EAI_BASE - eai; }
static inline int bw_err_sqlite(int rc) { return BW_ERR_SQLITE_BASE + rc; }
static inline int bw_err_is_errno(int code) { return code > 0 && code < BW_ERR_EAI_BASE; }
static inline int bw_err_is_eai(int code) { return code > BW_ERR_EAI_BASE && code < BW_ERR_SQLITE_BASE; }
static inline int bw_err_is_sqlite(int code) { return code >= BW_ERR_SQLITE_BASE; }

/* Name of a code ("ECONNREFUSED", "EAI_AGAIN", "SQLITE_BUSY"); never NULL, async-signal-safe
 * (unknown errno values come out as "E?"). */
const char *bw_err_name(int code);
/* Parse a name; 0 if unknown. */
int bw_err_parse(const char *name);

#endif
