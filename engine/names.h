/* Addresses this process obtained through name resolution, so that `dest: name:port`
 * rules can match a connect to one of them. Fixed-size, lock-free for readers. */
#ifndef BW_NAMES_H
#define BW_NAMES_H

#include <sys/socket.h>

#define BW_NAMES_SLOTS 256
#define BW_NAME_LEN 128

void bw_names_remember(const char *name, const struct sockaddr *sa, socklen_t len);
/* Copies the name last resolved to this address (port ignored) into buf; 0 if found. */
int bw_names_lookup(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);
void bw_names_reset(void);
/* In a forked child: a writer that was mid-update in another thread is gone. */
void bw_names_after_fork(void);

#endif
