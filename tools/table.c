/* Table layout shared by the report and the status command. */
#include <stdlib.h>
#include <string.h>
#include "report.h"
#include "table.h"

int bw_tab_wide;

static void *must(void *p)
{
	if (!p) {
		fputs("bulwark: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

void bw_tab_row(struct bw_tab *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = must(realloc(t->cells, t->cap * (size_t)t->ncols * sizeof *t->cells));
	}
	for (int i = 0; i < t->ncols; i++) {
		size_t n = strlen(cells[i]) + 1;
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = memcpy(must(malloc(n)),
									   cells[i], n);
	}
	t->nrows++;
}

void bw_tab_free(struct bw_tab *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

static void pad(FILE *out, size_t n)
{
	while (n--)
		fputc(' ', out);
}

/* While the line is too long, the widest text column above floor gives up a column. */
static void shrink(const struct bw_tab *t, size_t *w, size_t *total, int soft)
{
	size_t min = t->text_min ? t->text_min : 8;
	while (*total > BW_LINE_MAX) {
		int widest = -1;
		for (int c = 0; c < t->ncols; c++) {
			size_t floor = soft && t->cols[c].soft > min ? t->cols[c].soft : min;
			if (t->cols[c].text && w[c] > floor && (widest < 0 || w[c] > w[widest]))
				widest = c;
		}
		if (widest < 0)
			return;
		w[widest]--;
		(*total)--;
	}
}

/* Text columns are cut first down to their soft width, the widest first, and then
 * further: one long rule name must not take the room a destination needs. */
void bw_tab_print(FILE *out, const struct bw_tab *t)
{
	size_t w[BW_TAB_MAX_COLS], total = (size_t)t->ncols - 1;
	for (int c = 0; c < t->ncols; c++) {
		w[c] = bw_rp_width(t->cols[c].head);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t cw = bw_rp_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (cw > w[c])
				w[c] = cw;
		}
		total += w[c];
	}
	if (!bw_tab_wide) {
		shrink(t, w, &total, 1);
		shrink(t, w, &total, 0);
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->cols[c].head
					       : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
			/* room for the whole cell: cleaning never lengthens it */
			char *fit = must(malloc(strlen(s) + 4));
			bw_rp_fit(fit, strlen(s) + 4, s, w[c], t->cols[c].middle);
			size_t fw = bw_rp_width(fit);
			if (c)
				fputc(' ', out);
			if (!t->cols[c].text)
				pad(out, w[c] - fw);
			fputs(fit, out);
			if (t->cols[c].text && c + 1 < t->ncols)
				pad(out, w[c] - fw);
			free(fit);
		}
		fputc('\n', out);
	}
}
