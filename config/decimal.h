/* Decimal digits without the stdio machinery: the event formatter and the syslog writer
 * run in signal handlers, where snprintf may not be called, and the hot path prints
 * addresses and ports. */
#ifndef BW_DECIMAL_H
#define BW_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define BW_DECIMAL_MAX 20        /* digits of UINT64_MAX */

/* Writes v's digits to out (no terminating NUL) and returns how many. */
static inline size_t bw_decimal(char out[BW_DECIMAL_MAX], uint64_t v)
{
	char rev[BW_DECIMAL_MAX];
	size_t n = 0;
	do {
		rev[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = rev[n - 1 - i];
	return n;
}

#endif
