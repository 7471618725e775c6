/* Plain-text tables for `bulwark report` and `bulwark status`: columns as wide as their
 * widest cell, text columns cut (with an ellipsis) until a line fits 79 columns, unless
 * wide. */
#ifndef BW_TABLE_H
#define BW_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define BW_TAB_MAX_COLS 12
/* 79, not 80: a line that fills the last column makes some terminals wrap early. */
#define BW_LINE_MAX 79

struct bw_col {
	const char *head;
	int text;                /* text: left-aligned, may be cut; else a right-aligned figure */
	int middle;              /* text cut in the middle (destinations, paths), else at the end */
	size_t soft;             /* text: cut below this only when all text is this narrow */
};

struct bw_tab {
	const struct bw_col *cols;
	int ncols;
	char **cells;            /* row-major, ncols per row */
	size_t nrows, cap;
	size_t text_min;         /* a text column is never cut narrower; 0: 8 */
};

/* Append a row of ncols cells (copied). */
void bw_tab_row(struct bw_tab *t, const char *const *cells);
void bw_tab_free(struct bw_tab *t);
void bw_tab_print(FILE *out, const struct bw_tab *t);

/* Wide (--wide): no line limit, nothing cut; for the whole run of the command. */
extern int bw_tab_wide;

#endif
