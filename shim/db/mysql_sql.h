/* What the text of a MySQL statement says, for the mysql hook's safety rules
 * (bulwark.yaml(5), RETRY, MySQL): the checks are conservative, and the text is read only
 * here, never logged. Pure functions of the bytes, so unit-tested alone. */
#ifndef BW_MYSQL_SQL_H
#define BW_MYSQL_SQL_H

#include <stddef.h>

struct bw_my_sql_facts {
	int statements;              /* how many, a trailing ';' counting for none */
	int state;                   /* may leave state in the session */
};

/* What the n bytes at sql may do to the session. */
struct bw_my_sql_facts bw_my_sql_facts(const char *sql, size_t n);
/* One statement that reads and changes nothing: may say no to a read, never yes to a
 * write. */
int bw_my_read_only(const char *sql, size_t n);
/* The statement starts with entry, an item of a rule's idempotent list. */
int bw_my_starts_with(const char *sql, size_t n, const char *entry);

#endif
