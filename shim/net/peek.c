/* See peek.h. process_vm_readv on our own pid reads through the kernel, which checks the
 * addresses and says EFAULT instead of raising SIGSEGV. Where it is not allowed (a
 * seccomp filter) the copy is made directly, as a hook would without this. */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "peek.h"

int bw_peek(void *dst, const void *src, size_t n)
{
	if (!src)
		return -1;
	int saved = errno;
	struct iovec local = { dst, n }, remote = { (void *)src, n };
	ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	int err = errno;
	errno = saved;
	if (r == (ssize_t)n)
		return 0;
	if (r < 0 && (err == ENOSYS || err == EPERM)) {
		memcpy(dst, src, n);
		return 0;
	}
	return -1;
}
