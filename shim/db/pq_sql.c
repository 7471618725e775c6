/* What the text of a statement says, for the pg hook (hook_pq.c): no libpq, no state. */
#include <string.h>
#include "pq_sql.h"
#include "sqlword.h"

static int word_has(const char *w, size_t n, const char *s)
{
	size_t m = strlen(s);
	for (size_t i = 0; i + m <= n; i++)
		if (bw_sql_word_is(w + i, m, s))
			return 1;
	return 0;
}

/* Past blanks and comments. */
static const char *skip_space(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else {
			return p;
		}
	}
}

/* Whether sql may leave state in the session: a statement that starts with SET (but SET
 * LOCAL, SET TRANSACTION, SET CONSTRAINTS: the transaction's), PREPARE, LISTEN, DECLARE or
 * LOAD, or one that names a temporary table, set_config or a session advisory lock. */
static int sets_session_state_words(const char *sql);

/* Most statements name none of it: the first word starts no state-setting command, and
 * one pass over the text finds no "temp", "_config" or "_lock" and no second statement. */
int bw_pq_sets_session_state(const char *sql)
{
	const char *p = skip_space(sql), *w = p;
	while (bw_sql_word_char((unsigned char)*p))
		p++;
	size_t n = (size_t)(p - w);
	if (bw_sql_word_is(w, n, "set") || bw_sql_word_is(w, n, "prepare") || bw_sql_word_is(w, n, "listen") ||
	    bw_sql_word_is(w, n, "declare") || bw_sql_word_is(w, n, "load"))
		return sets_session_state_words(sql);
	while ((p = strpbrk(p, ";tT_")) != NULL) {
		if ((*p == ';' && !bw_pq_single_statement(p)) || (*p != '_' && bw_sql_word_is(p, 4, "temp")) ||
		    (*p == '_' && (bw_sql_word_is(p, 7, "_config") || bw_sql_word_is(p, 5, "_lock"))))
			return sets_session_state_words(sql);
		p++;
	}
	return 0;
}

static int sets_session_state_words(const char *sql)
{
	int first = 1, after_set = 0;
	for (const char *p = skip_space(sql); *p;) {
		if (*p == ';') {
			first = 1;
			p = skip_space(p + 1);
			continue;
		}
		if (!bw_sql_word_char((unsigned char)*p)) {
			p++;
			if (*p == '-' || *p == '/')
				p = skip_space(p);
			continue;
		}
		const char *w = p;
		while (bw_sql_word_char((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - w);
		if (after_set) {
			after_set = 0;
			if (!bw_sql_word_is(w, n, "local") && !bw_sql_word_is(w, n, "transaction") &&
			    !bw_sql_word_is(w, n, "constraints"))
				return 1;
		}
		if (first && bw_sql_word_is(w, n, "set"))
			after_set = 1;
		else if (first && (bw_sql_word_is(w, n, "prepare") || bw_sql_word_is(w, n, "listen") ||
				   bw_sql_word_is(w, n, "declare") || bw_sql_word_is(w, n, "load")))
			return 1;
		if (bw_sql_word_is(w, n, "temp") || bw_sql_word_is(w, n, "temporary") ||
		    word_has(w, n, "set_config") || word_has(w, n, "advisory_lock"))
			return 1;
		first = 0;
		p = skip_space(p);
	}
	return after_set;
}

/* One statement (a trailing ';' allowed): several in one string run in one implicit
 * transaction, and the first may be committed before a later one fails. */
int bw_pq_single_statement(const char *sql)
{
	const char *semi = strchr(sql, ';');
	if (!semi)
		return 1;
	for (const char *p = skip_space(semi + 1); *p; p = skip_space(p + 1))
		if (*p != ';')
			return 0;
	return 1;
}

/* Words before '(' that are SQL's own syntax or functions that cannot write: anything else
 * followed by '(' is a function call, and a function (nextval, one of the program's) may
 * do anything. */
static const char *const pure_calls[] = {
	"select", "from", "join", "in", "exists", "any", "all", "some", "as", "on", "using",
	"over", "filter", "within", "where", "and", "or", "not", "when", "then", "else", "by",
	"values", "array", "row", "lateral", "is", "between", "like", "ilike", "case", "union",
	"intersect", "except", "with", "distinct", "having", "limit", "offset", "cast",
	"count", "sum", "min", "max", "avg", "coalesce", "nullif", "greatest", "least", "abs",
	"lower", "upper", "length", "round", "floor", "ceil", "extract", "now", NULL
};

/* Words that write, lock or run something else, wherever they stand in a statement. */
static const char *const writing_words[] = {
	"insert", "update", "delete", "merge", "into", "for", "lock", "truncate", "copy",
	"call", "do", "execute", "notify", "listen", "nextval", "setval", NULL
};

static int word_listed(const char *w, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (bw_sql_word_is(w, n, *list))
			return 1;
	return 0;
}

/* Whether sql only reads, so that running it twice changes nothing: one statement that
 * starts with SELECT, VALUES, TABLE, SHOW or WITH, names no word of writing_words and
 * calls no function outside pure_calls. Strings and quoted names are passed over; text
 * the check does not follow (a backslash, a dollar quote, a qualified or quoted function
 * name) makes it say no. A view or an operator that writes is beyond what the text
 * shows. */
int bw_pq_read_only(const char *sql)
{
	if (!sql || !bw_pq_single_statement(sql) || strchr(sql, '\\'))
		return 0;
	const char *p = skip_space(sql);
	int first = 1, after_dot = 0;
	while (*p) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '$' && !(p[1] >= '0' && p[1] <= '9'))
			return 0;
		if ((ch == '-' && p[1] == '-') || (ch == '/' && p[1] == '*')) {
			p = skip_space(p);
			continue;
		}
		if (ch == '\'' || ch == '"') {
			const char *q = p + 1;
			while (*q && !(*q == (char)ch && q[1] != (char)ch))
				q += *q == (char)ch ? 2 : 1;
			if (!*q)
				return 0;
			p = skip_space(q + 1);
			if (ch == '"' && *p == '(')
				return 0;
			after_dot = 0;
			first = 0;
			continue;
		}
		if (ch == '$') {                  /* a parameter, $1 */
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
			continue;
		}
		if (!bw_sql_word_char(ch)) {
			after_dot = ch == '.' || (after_dot && (ch == ' ' || ch == '\t' ||
							       ch == '\n' || ch == '\r'));
			p++;
			continue;
		}
		const char *w = p;
		while (bw_sql_word_char((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - w);
		if (first && !bw_sql_word_is(w, n, "select") && !bw_sql_word_is(w, n, "values") &&
		    !bw_sql_word_is(w, n, "table") && !bw_sql_word_is(w, n, "show") && !bw_sql_word_is(w, n, "with"))
			return 0;
		first = 0;
		if (word_listed(w, n, writing_words))
			return 0;
		p = skip_space(p);
		if (*p == '(' && (after_dot || !word_listed(w, n, pure_calls)) &&
		    !(*w >= '0' && *w <= '9'))
			return 0;
		after_dot = 0;
	}
	return !first;
}
