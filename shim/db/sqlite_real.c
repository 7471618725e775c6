/* SQLite's functions as the resolver looks them up. */
#include "sqlite_real.h"

struct bw_sq_real bw_sq;

#define SQ(field, name, optional) BW_FOREIGN_SYM(struct bw_sq_real, field, name, optional)

static const struct bw_foreign_sym names[] = {
	SQ(step, "sqlite3_step", 0),
	SQ(open, "sqlite3_open", 0),
	SQ(open_v2, "sqlite3_open_v2", 0),
	SQ(prepare_v2, "sqlite3_prepare_v2", 0),
	SQ(prepare_v3, "sqlite3_prepare_v3", 1),
	SQ(exec, "sqlite3_exec", 0),
	SQ(db_handle, "sqlite3_db_handle", 0),
	SQ(extended_errcode, "sqlite3_extended_errcode", 0),
	SQ(get_autocommit, "sqlite3_get_autocommit", 0),
	SQ(txn_state, "sqlite3_txn_state", 1),
	SQ(stmt_busy, "sqlite3_stmt_busy", 0),
	SQ(sql, "sqlite3_sql", 0),
	SQ(db_filename, "sqlite3_db_filename", 0),
	SQ(vfs_find, "sqlite3_vfs_find", 0),
	SQ(vfs_register, "sqlite3_vfs_register", 0),
};

static const char *const sonames[] = { "libsqlite3.so.0", NULL };

struct bw_foreign bw_sq_lib = {
	.sonames = sonames,
	.syms = names,
	.n_syms = BW_FOREIGN_COUNT(names),
	.fns = &bw_sq,
};
