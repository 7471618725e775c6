/* hiredis's functions as the resolver looks them up. Only the anchor is required: an
 * older hiredis without some of the others still gets its calls passed through, each to
 * its own function. */
#include "redis_real.h"

struct bw_redis_real bw_rd;

#define RD(field, name, optional) BW_FOREIGN_SYM(struct bw_redis_real, field, name, optional)

static const struct bw_foreign_sym names[] = {
	RD(connect, "redisConnect", 0),
	RD(connect_timeout, "redisConnectWithTimeout", 1),
	RD(connect_nonblock, "redisConnectNonBlock", 1),
	RD(connect_bind_nonblock, "redisConnectBindNonBlock", 1),
	RD(connect_unix, "redisConnectUnix", 1),
	RD(connect_unix_timeout, "redisConnectUnixWithTimeout", 1),
	RD(connect_unix_nonblock, "redisConnectUnixNonBlock", 1),
	RD(connect_fd, "redisConnectFd", 1),
	RD(reconnect, "redisReconnect", 1),
	RD(free, "redisFree", 1),
	RD(free_keep_fd, "redisFreeKeepFd", 1),
	RD(vcommand, "redisvCommand", 1),
	RD(command_argv, "redisCommandArgv", 1),
	RD(vappend_command, "redisvAppendCommand", 1),
	RD(append_command_argv, "redisAppendCommandArgv", 1),
	RD(append_formatted, "redisAppendFormattedCommand", 1),
	RD(get_reply, "redisGetReply", 1),
	RD(vformat_command, "redisvFormatCommand", 1),
	RD(free_command, "redisFreeCommand", 1),
	RD(free_reply, "freeReplyObject", 1),
	RD(set_error, "__redisSetError", 1),
	RD(reader_create, "redisReaderCreate", 1),
	RD(reader_feed, "redisReaderFeed", 1),
	RD(reader_get_reply, "redisReaderGetReply", 1),
	RD(reader_free, "redisReaderFree", 1),
	RD(async_connect, "redisAsyncConnect", 1),
	RD(async_connect_unix, "redisAsyncConnectUnix", 1),
	RD(async_connect_with_options, "redisAsyncConnectWithOptions", 1),
	RD(connect_bind_nonblock_reuse, "redisConnectBindNonBlockWithReuse", 1),
	RD(connect_with_options, "redisConnectWithOptions", 1),
};

static const char *const sonames[] = { "libhiredis.so.1.1.0", "libhiredis.so.1.0.0",
				       "libhiredis.so.0.14", "libhiredis.so.0.13", NULL };

struct bw_foreign bw_rd_lib = {
	.sonames = sonames,
	.syms = names,
	.n_syms = BW_FOREIGN_COUNT(names),
	.fns = &bw_rd,
};
