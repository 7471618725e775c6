/* Error names: static tables only, so bw_err_name is safe in a signal handler. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include "decimal.h"
#include "errnames.h"

#define E(x) [x] = #x
/* Indexed by value; aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) would overwrite slots, so
 * they are only known to the parser. */
static const char *const errno_names[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO),
	E(E2BIG), E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM),
	E(EACCES), E(EFAULT), E(ENOTBLK), E(EBUSY), E(EEXIST), E(EXDEV),
	E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE),
	E(ENOTTY), E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS),
	E(EMLINK), E(EPIPE), E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG),
	E(ENOLCK), E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENOMSG), E(EIDRM),
	E(ECHRNG), E(EL2NSYNC), E(EL3HLT), E(EL3RST), E(ELNRNG), E(EUNATCH),
	E(ENOCSI), E(EL2HLT), E(EBADE), E(EBADR), E(EXFULL), E(ENOANO),
	E(EBADRQC), E(EBADSLT), E(EBFONT), E(ENOSTR), E(ENODATA), E(ETIME),
	E(ENOSR), E(ENONET), E(ENOPKG), E(EREMOTE), E(ENOLINK), E(EADV),
	E(ESRMNT), E(ECOMM), E(EPROTO), E(EMULTIHOP), E(EDOTDOT), E(EBADMSG),
	E(EOVERFLOW), E(ENOTUNIQ), E(EBADFD), E(EREMCHG), E(ELIBACC), E(ELIBBAD),
	E(ELIBSCN), E(ELIBMAX), E(ELIBEXEC), E(EILSEQ), E(ERESTART), E(ESTRPIPE),
	E(EUSERS), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP),
	E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN),
	E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS),
	E(EISCONN), E(ENOTCONN), E(ESHUTDOWN), E(ETOOMANYREFS), E(ETIMEDOUT),
	E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS),
	E(ESTALE), E(EUCLEAN), E(ENOTNAM), E(ENAVAIL), E(EISNAM), E(EREMOTEIO), E(EDQUOT),
	E(ENOMEDIUM), E(EMEDIUMTYPE), E(ECANCELED), E(ENOKEY), E(EKEYEXPIRED),
	E(EKEYREVOKED), E(EKEYREJECTED), E(EOWNERDEAD), E(ENOTRECOVERABLE), E(ERFKILL),
	E(EHWPOISON),
};
#undef E

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct code_name {
	int code;
	const char *name;
};

static const struct code_name errno_aliases[] = {
	{ EWOULDBLOCK, "EWOULDBLOCK" }, { EDEADLOCK, "EDEADLOCK" }, { ENOTSUP, "ENOTSUP" },
};

#define A(x) { x, #x }
static const struct code_name eai_names[] = {
	A(EAI_BADFLAGS), A(EAI_NONAME), A(EAI_AGAIN), A(EAI_FAIL), A(EAI_NODATA),
	A(EAI_FAMILY), A(EAI_SOCKTYPE), A(EAI_SERVICE), A(EAI_ADDRFAMILY), A(EAI_MEMORY),
	A(EAI_SYSTEM), A(EAI_OVERFLOW), A(EAI_INPROGRESS), A(EAI_CANCELED),
	A(EAI_NOTCANCELED), A(EAI_ALLDONE), A(EAI_INTR), A(EAI_IDN_ENCODE),
};
#undef A

/* SQLite result codes by value: the library never includes sqlite3.h. Extended codes are
 * the primary code plus a sub-code in the second byte. */
#define X(p, n) ((p) | ((n) << 8))
static const struct code_name sqlite_names[] = {
	{ 1, "SQLITE_ERROR" }, { 2, "SQLITE_INTERNAL" }, { 3, "SQLITE_PERM" },
	{ 4, "SQLITE_ABORT" }, { 5, "SQLITE_BUSY" }, { 6, "SQLITE_LOCKED" },
	{ 7, "SQLITE_NOMEM" }, { 8, "SQLITE_READONLY" }, { 9, "SQLITE_INTERRUPT" },
	{ 10, "SQLITE_IOERR" }, { 11, "SQLITE_CORRUPT" }, { 12, "SQLITE_NOTFOUND" },
	{ 13, "SQLITE_FULL" }, { 14, "SQLITE_CANTOPEN" }, { 15, "SQLITE_PROTOCOL" },
	{ 16, "SQLITE_EMPTY" }, { 17, "SQLITE_SCHEMA" }, { 18, "SQLITE_TOOBIG" },
	{ 19, "SQLITE_CONSTRAINT" }, { 20, "SQLITE_MISMATCH" }, { 21, "SQLITE_MISUSE" },
	{ 22, "SQLITE_NOLFS" }, { 23, "SQLITE_AUTH" }, { 24, "SQLITE_FORMAT" },
	{ 25, "SQLITE_RANGE" }, { 26, "SQLITE_NOTADB" }, { 27, "SQLITE_NOTICE" },
	{ 28, "SQLITE_WARNING" },
	{ X(1, 1), "SQLITE_ERROR_MISSING_COLLSEQ" }, { X(1, 2), "SQLITE_ERROR_RETRY" },
	{ X(1, 3), "SQLITE_ERROR_SNAPSHOT" },
	{ X(4, 2), "SQLITE_ABORT_ROLLBACK" },
	{ X(5, 1), "SQLITE_BUSY_RECOVERY" }, { X(5, 2), "SQLITE_BUSY_SNAPSHOT" },
	{ X(5, 3), "SQLITE_BUSY_TIMEOUT" },
	{ X(6, 1), "SQLITE_LOCKED_SHAREDCACHE" }, { X(6, 2), "SQLITE_LOCKED_VTAB" },
	{ X(8, 1), "SQLITE_READONLY_RECOVERY" }, { X(8, 2), "SQLITE_READONLY_CANTLOCK" },
	{ X(8, 3), "SQLITE_READONLY_ROLLBACK" }, { X(8, 4), "SQLITE_READONLY_DBMOVED" },
	{ X(8, 5), "SQLITE_READONLY_CANTINIT" }, { X(8, 6), "SQLITE_READONLY_DIRECTORY" },
	{ X(10, 1), "SQLITE_IOERR_READ" }, { X(10, 2), "SQLITE_IOERR_SHORT_READ" },
	{ X(10, 3), "SQLITE_IOERR_WRITE" }, { X(10, 4), "SQLITE_IOERR_FSYNC" },
	{ X(10, 5), "SQLITE_IOERR_DIR_FSYNC" }, { X(10, 6), "SQLITE_IOERR_TRUNCATE" },
	{ X(10, 7), "SQLITE_IOERR_FSTAT" }, { X(10, 8), "SQLITE_IOERR_UNLOCK" },
	{ X(10, 9), "SQLITE_IOERR_RDLOCK" }, { X(10, 10), "SQLITE_IOERR_DELETE" },
	{ X(10, 11), "SQLITE_IOERR_BLOCKED" }, { X(10, 12), "SQLITE_IOERR_NOMEM" },
	{ X(10, 13), "SQLITE_IOERR_ACCESS" }, { X(10, 14), "SQLITE_IOERR_CHECKRESERVEDLOCK" },
	{ X(10, 15), "SQLITE_IOERR_LOCK" }, { X(10, 16), "SQLITE_IOERR_CLOSE" },
	{ X(10, 17), "SQLITE_IOERR_DIR_CLOSE" }, { X(10, 18), "SQLITE_IOERR_SHMOPEN" },
	{ X(10, 19), "SQLITE_IOERR_SHMSIZE" }, { X(10, 20), "SQLITE_IOERR_SHMLOCK" },
	{ X(10, 21), "SQLITE_IOERR_SHMMAP" }, { X(10, 22), "SQLITE_IOERR_SEEK" },
	{ X(10, 23), "SQLITE_IOERR_DELETE_NOENT" }, { X(10, 24), "SQLITE_IOERR_MMAP" },
	{ X(10, 25), "SQLITE_IOERR_GETTEMPPATH" }, { X(10, 26), "SQLITE_IOERR_CONVPATH" },
	{ X(10, 27), "SQLITE_IOERR_VNODE" }, { X(10, 28), "SQLITE_IOERR_AUTH" },
	{ X(10, 29), "SQLITE_IOERR_BEGIN_ATOMIC" }, { X(10, 30), "SQLITE_IOERR_COMMIT_ATOMIC" },
	{ X(10, 31), "SQLITE_IOERR_ROLLBACK_ATOMIC" }, { X(10, 32), "SQLITE_IOERR_DATA" },
	{ X(10, 33), "SQLITE_IOERR_CORRUPTFS" }, { X(10, 34), "SQLITE_IOERR_IN_PAGE" },
	{ X(11, 1), "SQLITE_CORRUPT_VTAB" }, { X(11, 2), "SQLITE_CORRUPT_SEQUENCE" },
	{ X(11, 3), "SQLITE_CORRUPT_INDEX" },
	{ X(14, 1), "SQLITE_CANTOPEN_NOTEMPDIR" }, { X(14, 2), "SQLITE_CANTOPEN_ISDIR" },
	{ X(14, 3), "SQLITE_CANTOPEN_FULLPATH" }, { X(14, 4), "SQLITE_CANTOPEN_CONVPATH" },
	{ X(14, 5), "SQLITE_CANTOPEN_DIRTYWAL" }, { X(14, 6), "SQLITE_CANTOPEN_SYMLINK" },
	{ X(19, 1), "SQLITE_CONSTRAINT_CHECK" }, { X(19, 2), "SQLITE_CONSTRAINT_COMMITHOOK" },
	{ X(19, 3), "SQLITE_CONSTRAINT_FOREIGNKEY" }, { X(19, 4), "SQLITE_CONSTRAINT_FUNCTION" },
	{ X(19, 5), "SQLITE_CONSTRAINT_NOTNULL" }, { X(19, 6), "SQLITE_CONSTRAINT_PRIMARYKEY" },
	{ X(19, 7), "SQLITE_CONSTRAINT_TRIGGER" }, { X(19, 8), "SQLITE_CONSTRAINT_UNIQUE" },
	{ X(19, 9), "SQLITE_CONSTRAINT_VTAB" }, { X(19, 10), "SQLITE_CONSTRAINT_ROWID" },
	{ X(19, 11), "SQLITE_CONSTRAINT_PINNED" }, { X(19, 12), "SQLITE_CONSTRAINT_DATATYPE" },
	{ X(23, 1), "SQLITE_AUTH_USER" },
	{ X(27, 1), "SQLITE_NOTICE_RECOVER_WAL" }, { X(27, 2), "SQLITE_NOTICE_RECOVER_ROLLBACK" },
	{ X(27, 3), "SQLITE_NOTICE_RBU" },
	{ X(28, 1), "SQLITE_WARNING_AUTOINDEX" },
};
#undef X

static const char *find_name(const struct code_name *t, size_t n, int code, const char *unknown)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].name;
	return unknown;
}

static int find_code(const struct code_name *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].code;
	return 0;
}

/* Error replies a Redis server gives by their first word, for retry lists and events. */
static const char *const redis_replies[] = {
	"ERR", "LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY",
	"NOSCRIPT", "MISCONF", "OOM", "NOREPLICAS", "MOVED", "ASK", "WRONGTYPE", "EXECABORT",
};

int bw_err_redis_reply(const char *reply, size_t n)
{
	size_t w = 0;
	while (w < n && reply[w] >= 'A' && reply[w] <= 'Z')
		w++;
	if (w == 0 || (w < n && reply[w] != ' '))
		return 0;
	for (size_t i = 0; i < NELEM(redis_replies); i++)
		if (strlen(redis_replies[i]) == w && memcmp(redis_replies[i], reply, w) == 0)
			return BW_ERR_REDIS_BASE + (int)i;
	return 0;
}

unsigned bw_err_space(int code)
{
	if (bw_err_is_errno(code))
		return BW_SPACE_ERRNO;
	if (bw_err_is_eai(code))
		return BW_SPACE_EAI;
	if (bw_err_is_sqlite(code))
		return BW_SPACE_SQLITE;
	/* five base-36 characters: 36^5 codes, the rest of the range is no SQLSTATE */
	if (code >= BW_ERR_SQLSTATE_BASE && code < BW_ERR_SQLSTATE_BASE + 36 * 36 * 36 * 36 * 36)
		return BW_SPACE_SQLSTATE;
	/* MySQL's error numbers run from 1 to six digits, as MYSQL_N parses them */
	if (code > BW_ERR_MYSQL_BASE && code < BW_ERR_MYSQL_BASE + 1000000)
		return BW_SPACE_MYSQL;
	if (code >= BW_ERR_REDIS_BASE && code < BW_ERR_REDIS_BASE + (int)NELEM(redis_replies))
		return BW_SPACE_REDIS;
	return 0;
}

static int base36(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'Z' ? c - 'A' + 10 : -1;
}

int bw_err_sqlstate(const char *state)
{
	int v = 0;
	for (int i = 0; i < 5; i++) {
		int d = base36(state[i]);
		if (d < 0)
			return 0;
		v = v * 36 + d;
	}
	return state[5] ? 0 : BW_ERR_SQLSTATE_BASE + v;
}

int bw_err_matches(int listed, int err)
{
	if (listed == err)
		return 1;
	/* a SQLSTATE class's generic code (08000, the last three characters 0) stands for
	 * its class, as SQLSTATEs are defined */
	if (bw_err_space(listed) == BW_SPACE_SQLSTATE && bw_err_space(err) == BW_SPACE_SQLSTATE) {
		const int subclass = 36 * 36 * 36;
		int l = listed - BW_ERR_SQLSTATE_BASE, e = err - BW_ERR_SQLSTATE_BASE;
		return l % subclass == 0 && l / subclass == e / subclass;
	}
	/* a primary SQLite code stands for its extended ones */
	return bw_err_is_sqlite(listed) && bw_err_is_sqlite(err) &&
	       listed - BW_ERR_SQLITE_BASE < 256 &&
	       (err - BW_ERR_SQLITE_BASE) % 256 == listed - BW_ERR_SQLITE_BASE;
}

/* "PREFIX" then n as digits, into buf. */
static const char *made_up(char *buf, size_t cap, const char *prefix, const char *body)
{
	size_t o = 0;
	for (const char *p = prefix; *p && o + 1 < cap; p++)
		buf[o++] = *p;
	for (const char *p = body; *p && o + 1 < cap; p++)
		buf[o++] = *p;
	buf[o] = '\0';
	return buf;
}

const char *bw_err_name(int code)
{
	static __thread char buf[32];
	if (bw_err_is_errno(code)) {
		if ((size_t)code < NELEM(errno_names) && errno_names[code])
			return errno_names[code];
		return "E?";
	}
	if (bw_err_is_eai(code))
		return find_name(eai_names, NELEM(eai_names), BW_ERR_EAI_BASE - code, "EAI_?");
	switch (bw_err_space(code)) {
	case BW_SPACE_SQLITE:
		return find_name(sqlite_names, NELEM(sqlite_names), code - BW_ERR_SQLITE_BASE,
				 "SQLITE_?");
	case BW_SPACE_SQLSTATE: {
		char st[6];
		int v = code - BW_ERR_SQLSTATE_BASE;
		for (int i = 4; i >= 0; i--, v /= 36)
			st[i] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[v % 36];
		st[5] = '\0';
		return made_up(buf, sizeof buf, "SQLSTATE_", st);
	}
	case BW_SPACE_MYSQL: {
		char num[BW_DECIMAL_MAX + 1];
		num[bw_decimal(num, (uint64_t)(code - BW_ERR_MYSQL_BASE))] = '\0';
		return made_up(buf, sizeof buf, "MYSQL_", num);
	}
	case BW_SPACE_REDIS:
		return made_up(buf, sizeof buf, "REDIS_", redis_replies[code - BW_ERR_REDIS_BASE]);
	}
	return "E?";
}

static int parse_errno(const char *name)
{
	for (size_t i = 1; i < NELEM(errno_names); i++)
		if (errno_names[i] && strcmp(errno_names[i], name) == 0)
			return (int)i;
	return find_code(errno_aliases, NELEM(errno_aliases), name);
}

int bw_err_parse(const char *name)
{
	int c;
	if (strncmp(name, "EAI_", 4) == 0) {
		c = find_code(eai_names, NELEM(eai_names), name);
		return c ? bw_err_eai(c) : 0;
	}
	if (strncmp(name, "SQLITE_", 7) == 0) {
		c = find_code(sqlite_names, NELEM(sqlite_names), name);
		return c ? bw_err_sqlite(c) : 0;
	}
	if (strncmp(name, "SQLSTATE_", 9) == 0)
		return bw_err_sqlstate(name + 9);
	if (strncmp(name, "MYSQL_", 6) == 0) {
		long v = 0;
		const char *p = name + 6;
		for (; *p >= '0' && *p <= '9' && v < 1000000; p++)
			v = v * 10 + (*p - '0');
		return p > name + 6 && !*p && v > 0 && v < 1000000 ? bw_err_mysql((int)v) : 0;
	}
	if (strncmp(name, "REDIS_", 6) == 0) {
		for (size_t i = 0; i < NELEM(redis_replies); i++)
			if (strcmp(redis_replies[i], name + 6) == 0)
				return BW_ERR_REDIS_BASE + (int)i;
		return 0;
	}
	return name[0] == 'E' ? parse_errno(name) : 0;
}
