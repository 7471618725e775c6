/* The words of SQL text as the statement checks read them (mysql_sql.c, pq_sql.c):
 * ASCII only, case-folded, so no locale can change what a statement is judged to do. */
#ifndef BW_SQLWORD_H
#define BW_SQLWORD_H

#include <stddef.h>

static inline int bw_sql_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static inline int bw_sql_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '$';
}

/* The n characters at w are the word s (lower case), whatever their case. */
static inline int bw_sql_word_is(const char *w, size_t n, const char *s)
{
	size_t i = 0;
	for (; i < n && s[i]; i++)
		if (bw_sql_lower((unsigned char)w[i]) != s[i])
			return 0;
	return i == n && !s[i];
}

#endif
