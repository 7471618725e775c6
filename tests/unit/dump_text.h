/* A policy's dump as text (free it), for tests that compare policies by what they print.
 * Include after cmocka.h and config.h. */
#ifndef BW_TEST_DUMP_TEXT_H
#define BW_TEST_DUMP_TEXT_H

#include <stdio.h>

static inline char *dump_text(const struct bw_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	bw_config_dump(cfg, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

#endif
