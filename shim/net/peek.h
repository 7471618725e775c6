/* Reading memory the program handed to a hook, which may be a bad pointer. */
#ifndef BW_PEEK_H
#define BW_PEEK_H

#include <stddef.h>

/* Copy n bytes from src: 0, or -1 when the kernel says they cannot be read. The program's
 * call then goes to the kernel as it is, which answers EFAULT, as it would have without
 * us. A system call: only where a hook must read the program's memory before the real
 * call does (a connect's address, a scatter list's lengths). Keeps errno. */
int bw_peek(void *dst, const void *src, size_t n);

#endif
