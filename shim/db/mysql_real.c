/* libmariadb's functions as the resolver looks them up. Only the anchor is required: a
 * client library without some of the others (Oracle's libmysqlclient has no
 * mysql_get_socket) still gets its calls passed through, each to its own function. */
#include "mysql_real.h"

struct bw_my_real bw_my;

#define MY(field, name, optional) BW_FOREIGN_SYM(struct bw_my_real, field, name, optional)

static const struct bw_foreign_sym names[] = {
	MY(real_connect, "mysql_real_connect", 0),
	MY(real_query, "mysql_real_query", 1),
	MY(query, "mysql_query", 1),
	MY(ping, "mysql_ping", 1),
	MY(close, "mysql_close", 1),
	MY(stmt_init, "mysql_stmt_init", 1),
	MY(stmt_prepare, "mysql_stmt_prepare", 1),
	MY(stmt_execute, "mysql_stmt_execute", 1),
	MY(stmt_close, "mysql_stmt_close", 1),
	MY(errno_, "mysql_errno", 1),
	MY(error, "mysql_error", 1),
	MY(sqlstate, "mysql_sqlstate", 1),
	MY(stmt_errno, "mysql_stmt_errno", 1),
	MY(get_socket, "mysql_get_socket", 1),
	MY(get_optionv, "mysql_get_optionv", 1),
	MY(optionsv, "mysql_optionsv", 1),
	MY(get_infov, "mariadb_get_infov", 1),
	MY(reconnect, "mariadb_reconnect", 1),
};

static const char *const sonames[] = { "libmariadb.so.3", "libmysqlclient.so.21",
				       "libmysqlclient.so.18", NULL };

struct bw_foreign bw_my_lib = {
	.sonames = sonames,
	.syms = names,
	.n_syms = BW_FOREIGN_COUNT(names),
	.fns = &bw_my,
};
