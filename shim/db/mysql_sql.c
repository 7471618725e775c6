/* The text of a MySQL statement, read for the mysql hook (mysql_sql.h). */
#include <string.h>
#include "mysql_sql.h"
#include "sqlword.h"

/* Past blanks and comments from p to end. MySQL's executable comments (slash, star,
 * bang) run their text, so they are not skipped. */
static const char *skip_space(const char *p, const char *end)
{
	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f') {
			p++;
		} else if (*p == '#' || (end - p >= 3 && p[0] == '-' && p[1] == '-' &&
					 (p[2] == ' ' || p[2] == '\t' || p[2] == '\n'))) {
			while (p < end && *p != '\n')
				p++;
		} else if (end - p >= 3 && p[0] == '/' && p[1] == '*' && p[2] != '!' &&
			   p[2] != 'M') {
			p += 2;
			while (p < end && !(p[0] == '*' && p + 1 < end && p[1] == '/'))
				p++;
			p = p < end ? p + 2 : end;
		} else {
			break;
		}
	}
	return p;
}

/* Past a quoted string, identifier or literal opened at p. */
static const char *skip_quoted(const char *p, const char *end)
{
	char q = *p++;
	while (p < end && *p != q)
		p += (*p == '\\' && q != '`' && p + 1 < end) ? 2 : 1;
	return p < end ? p + 1 : end;
}

/* What the n bytes of sql may do to the session: a statement that starts with SET,
 * PREPARE, LOCK, USE, HANDLER, XA or DECLARE, or one that names TEMPORARY, a user
 * variable (@name) or GET_LOCK. */
struct bw_my_sql_facts bw_my_sql_facts(const char *sql, size_t n)
{
	struct bw_my_sql_facts f = { 0, 0 };
	const char *p = sql, *end = sql + n;
	int first = 1;
	p = skip_space(p, end);
	while (p < end) {
		if (*p == ';') {
			first = 1;
			p = skip_space(p + 1, end);
			continue;
		}
		if (first) {
			f.statements++;
		}
		if (*p == '\'' || *p == '"' || *p == '`') {
			p = skip_quoted(p, end);
			first = 0;
		} else if (*p == '@') {
			if (p + 1 < end && p[1] != '@')
				f.state = 1;
			p += p + 1 < end && p[1] == '@' ? 2 : 1;
			first = 0;
		} else if (bw_sql_word_char((unsigned char)*p)) {
			const char *w = p;
			while (p < end && bw_sql_word_char((unsigned char)*p))
				p++;
			size_t k = (size_t)(p - w);
			if (first && (bw_sql_word_is(w, k, "set") || bw_sql_word_is(w, k, "prepare") ||
				      bw_sql_word_is(w, k, "lock") || bw_sql_word_is(w, k, "use") ||
				      bw_sql_word_is(w, k, "handler") || bw_sql_word_is(w, k, "xa") ||
				      bw_sql_word_is(w, k, "declare")))
				f.state = 1;
			if (bw_sql_word_is(w, k, "temporary") || bw_sql_word_is(w, k, "get_lock"))
				f.state = 1;
			first = 0;
		} else {
			p++;
			first = 0;
		}
		p = skip_space(p, end);
	}
	return f;
}

static int blank(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Words that make a query other than a plain read: it writes (INTO a file or variables),
 * takes locks (FOR UPDATE, LOCK IN SHARE MODE), advances a sequence (NEXT VALUE FOR), or
 * runs a procedure. */
static const char *const not_read_only[] = {
	"into", "for", "update", "lock", "share", "next", "procedure", "handler",
};

/* What may be called in a read-only query: the built-in functions that only compute,
 * and the keywords a parenthesis follows. Any other name followed by '(' may be a stored
 * function, which may write, or one of the built-ins that act (GET_LOCK, SLEEP, NEXTVAL,
 * SETVAL, RELEASE_LOCK). */
static const char *const callable[] = {
	"select", "from", "join", "on", "using", "where", "and", "or", "not", "in", "exists",
	"any", "all", "some", "as", "by", "having", "when", "then", "else", "is", "like",
	"between", "union", "count", "sum", "min", "max", "avg", "group_concat", "coalesce",
	"ifnull", "nullif", "if", "concat", "concat_ws", "length", "char_length", "lower",
	"upper", "substr", "substring", "trim", "left", "right", "lpad", "rpad", "replace",
	"locate", "instr", "position", "round", "floor", "ceil", "ceiling", "abs", "mod",
	"greatest", "least", "now", "curdate", "current_date", "current_timestamp",
	"unix_timestamp", "from_unixtime", "date", "date_format", "date_add", "date_sub",
	"datediff", "timestampdiff", "cast", "convert", "hex", "unhex", "md5", "sha1", "sha2",
	"json_extract", "json_unquote", "version", "database", "schema", "connection_id",
	"row_number", "rank", "dense_rank", "over", "partition", "case", "distinct",
};

static int listed_word(const char *const *list, size_t n, const char *w, size_t k)
{
	for (size_t i = 0; i < n; i++)
		if (bw_sql_word_is(w, k, list[i]))
			return 1;
	return 0;
}

#define LISTED_WORD(list, w, k) listed_word(list, sizeof list / sizeof list[0], w, k)

/* One query that reads and changes nothing, by a conservative look at its text: it
 * starts with SELECT, SHOW, DESCRIBE or DESC, assigns no variable, names none of
 * not_read_only and calls only what callable lists. It may say no to a query that only
 * reads (a stored function that only reads), never yes to one that writes. */
int bw_my_read_only(const char *sql, size_t n)
{
	const char *p = skip_space(sql, sql + n), *end = sql + n;
	const char *w = p;
	while (p < end && bw_sql_word_char((unsigned char)*p))
		p++;
	size_t k = (size_t)(p - w);
	if (!bw_sql_word_is(w, k, "select") && !bw_sql_word_is(w, k, "show") && !bw_sql_word_is(w, k, "describe") &&
	    !bw_sql_word_is(w, k, "desc"))
		return 0;
	while ((p = skip_space(p, end)) < end) {
		if (*p == ';') {
			/* nothing after it: several statements are not one read */
			return skip_space(p + 1, end) == end;
		}
		if (*p == '\'' || *p == '"' || *p == '`') {
			p = skip_quoted(p, end);
			if (skip_space(p, end) < end && *skip_space(p, end) == '(')
				return 0;
			continue;
		}
		if (*p == ':' && p + 1 < end && p[1] == '=')
			return 0;
		if (!bw_sql_word_char((unsigned char)*p)) {
			p++;
			continue;
		}
		w = p;
		while (p < end && bw_sql_word_char((unsigned char)*p))
			p++;
		k = (size_t)(p - w);
		if (LISTED_WORD(not_read_only, w, k))
			return 0;
		const char *after = skip_space(p, end);
		if (after < end && *after == '(' && !LISTED_WORD(callable, w, k) &&
		    !(*w >= '0' && *w <= '9'))
			return 0;
	}
	return 1;
}

/* Whether the n bytes of sql start with entry, a statement's beginning the rule's author
 * says may run twice (`idempotent: ["UPDATE jobs SET state = 'done'"]`): letters compared
 * without case, any run of blanks as one, and the entry ending where a word ends. */
int bw_my_starts_with(const char *sql, size_t n, const char *entry)
{
	const char *p = skip_space(sql, sql + n), *end = sql + n, *q = entry;
	while (blank((unsigned char)*q))
		q++;
	if (!*q)
		return 0;
	while (*q) {
		if (blank((unsigned char)*q)) {
			if (p >= end || !blank((unsigned char)*p))
				return 0;
			while (blank((unsigned char)*q))
				q++;
			while (p < end && blank((unsigned char)*p))
				p++;
			continue;
		}
		if (p >= end || bw_sql_lower((unsigned char)*p) != bw_sql_lower((unsigned char)*q))
			return 0;
		p++, q++;
	}
	return !(p < end && bw_sql_word_char((unsigned char)*p) && bw_sql_word_char((unsigned char)q[-1]));
}
