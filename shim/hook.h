/* Marks an interposed libc name: everything else in the library is hidden (-fvisibility),
 * and the version script keeps only these. */
#ifndef BW_HOOK_H
#define BW_HOOK_H

#define BW_HOOK __attribute__((visibility("default")))

#endif
