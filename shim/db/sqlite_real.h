/* The program's own SQLite, found at run time through the foreign-library resolver
 * (foreign.h): the library never links libsqlite3. */
#ifndef BW_SQLITE_REAL_H
#define BW_SQLITE_REAL_H

#include <sqlite3.h>
#include "foreign.h"

struct bw_sq_real {
	int (*step)(sqlite3_stmt *);
	int (*open)(const char *, sqlite3 **);
	int (*open_v2)(const char *, sqlite3 **, int, const char *);
	int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
	int (*prepare_v3)(sqlite3 *, const char *, int, unsigned, sqlite3_stmt **, const char **);
	int (*exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
		    char **);
	sqlite3 *(*db_handle)(sqlite3_stmt *);
	int (*extended_errcode)(sqlite3 *);
	int (*get_autocommit)(sqlite3 *);
	int (*txn_state)(sqlite3 *, const char *);     /* NULL before SQLite 3.34 */
	int (*stmt_busy)(sqlite3_stmt *);
	const char *(*sql)(sqlite3_stmt *);
	const char *(*db_filename)(sqlite3 *, const char *);
	sqlite3_vfs *(*vfs_find)(const char *);
	int (*vfs_register)(sqlite3_vfs *, int);
};

extern struct bw_sq_real bw_sq;
extern struct bw_foreign bw_sq_lib;

#endif
