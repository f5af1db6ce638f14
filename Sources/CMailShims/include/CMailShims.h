// C shims for what Swift cannot call directly: SCM_RIGHTS fd passing, prctl, syncfs,
// peer credentials. Every function returns -1 and leaves errno set on failure.
#ifndef CMAILSHIMS_H
#define CMAILSHIMS_H
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

/// Sends `len` bytes of `data` and one file descriptor over a unix stream socket.
int mail_send_fd(int sock, int fd, const void *data, size_t len);
/// Receives up to `cap` bytes and at most one descriptor (*fd = -1 when none); returns bytes read.
ssize_t mail_recv_fd(int sock, int *fd, void *data, size_t cap);
/// prctl(PR_SET_NO_NEW_PRIVS, 1) and prctl(PR_SET_DUMPABLE, 0).
int mail_set_no_new_privs(void);
int mail_set_dumpable(int on);
/// Clears the ambient capability set (PR_CAP_AMBIENT_CLEAR_ALL).
int mail_clear_ambient_caps(void);
/// Drops every capability from the bounding set (needs CAP_SETPCAP); returns count dropped.
int mail_drop_bounding_set(void);
/// Ask the kernel to SIGTERM this process when its parent dies.
int mail_set_parent_death_signal(int sig);
int mail_syncfs(int fd);
/// SO_PEERCRED of a connected unix socket.
int mail_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid);
int mail_socketpair(int fds[2]);
int mail_setresuid(uid_t r, uid_t e, uid_t s);
int mail_setresgid(gid_t r, gid_t e, gid_t s);
/// Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP and returns a signalfd for them (CLOEXEC|NONBLOCK).
int mail_signalfd_setup(void);
/// Reads one signal from a signalfd: returns the signal number, 0 if none pending, -1 on error.
int mail_signalfd_read(int fd);
int mail_accept_cloexec(int fd);
#include <spawn.h>
/// posix_spawn_file_actions_addclosefrom_np: the child closes every fd >= from (glibc 2.34+).
int mail_spawn_closefrom(posix_spawn_file_actions_t *fa, int from);
#endif
