// C shims: SCM_RIGHTS, prctl, syncfs, peer credentials (see CMailShims.h).
#define _GNU_SOURCE
#include "CMailShims.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include <signal.h>
#include <spawn.h>
#include <sys/signalfd.h>

int mail_send_fd(int sock, int fd, const void *data, size_t len) {
    struct msghdr msg; memset(&msg, 0, sizeof msg);
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = u.buf; msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

ssize_t mail_recv_fd(int sock, int *fd, void *data, size_t cap) {
    struct msghdr msg; memset(&msg, 0, sizeof msg);
    struct iovec iov = { .iov_base = data, .iov_len = cap };
    union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } u;
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = u.buf; msg.msg_controllen = sizeof u.buf;
    *fd = -1;
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[4]; memcpy(fds, CMSG_DATA(c), sizeof(int) * (count > 4 ? 4 : count));
            for (int i = 0; i < count && i < 4; i++) {
                if (*fd < 0) *fd = fds[i]; else close(fds[i]);   // at most one fd per message
            }
        }
    }
    return n;
}

int mail_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
int mail_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, on, 0, 0, 0); }
int mail_clear_ambient_caps(void) {
    int r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return (r < 0 && errno == EINVAL) ? 0 : r;   // kernels without ambient caps
}
int mail_drop_bounding_set(void) {
    int dropped = 0;
    for (int cap = 0; cap <= 63; cap++) {
        int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (r < 0) break;                 // EINVAL: past the last capability this kernel knows
        if (r == 1) {
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return -1;
            dropped++;
        }
    }
    return dropped;
}
int mail_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }
int mail_syncfs(int fd) { return syncfs(fd); }
int mail_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cr; socklen_t len = sizeof cr;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) return -1;
    *pid = cr.pid; *uid = cr.uid; *gid = cr.gid; return 0;
}
int mail_socketpair(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }
int mail_setresuid(uid_t r, uid_t e, uid_t s) { return setresuid(r, e, s); }
int mail_setresgid(gid_t r, gid_t e, gid_t s) { return setresgid(r, e, s); }

int mail_signalfd_setup(void) {
    sigset_t set; sigemptyset(&set);
    sigaddset(&set, SIGCHLD); sigaddset(&set, SIGTERM); sigaddset(&set, SIGINT); sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}
int mail_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    return n == sizeof si ? (int)si.ssi_signo : -1;
}
int mail_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }
int mail_spawn_closefrom(posix_spawn_file_actions_t *fa, int from) { return posix_spawn_file_actions_addclosefrom_np(fa, from); }
