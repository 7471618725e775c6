/* A VFS wrapped around the default one, so that SQLite faults and refusals happen at the
 * storage layer: a lock that reports busy is met by SQLite and the program exactly as a
 * real one, where a result code faked at the API would desynchronize them
 * (design.md H20). */
#ifndef BW_SQLITE_VFS_H
#define BW_SQLITE_VFS_H

/* Register the wrapper as the default VFS (once). */
void bw_sq_vfs_install(void);

/* While set (non-zero) on this thread, every lock the statement asks for fails with this
 * SQLite code (SQLITE_BUSY for a refusal as a held lock), and the waits of the program's
 * busy handler pass at once: no other connection is going to release the lock. 0 ends
 * it. */
void bw_sq_refuse_locks(int sqlite_code);

/* One injected fault for this thread's next storage operation that can meet it: a busy or
 * locked code on the next lock, an I/O or full-disk code on the next read or write. 0
 * clears it. */
void bw_sq_inject_fault(int sqlite_code);

#endif
