# A socket activator for tests, doing what systemd does for a socket unit and its service: it
# binds the sockets once (TCP, or unix with mode and group like SocketMode=/SocketGroup=), keeps
# them for its whole life, and starts the service with them at fds 3.. and LISTEN_PID, LISTEN_FDS
# and LISTEN_FDNAMES set (sd_listen_fds(3)); the service can stop and start again while
# connections wait in the kernel's backlog. (systemd-socket-activate execs into the service, so
# its sockets die with it: no restart.)
import fcntl
import grp
import os
import socket
import subprocess


class Activator:
    def __init__(self, sockets):
        """`sockets`: [(name, address)], address ("tcp", host, port) or ("unix", path, mode, group)."""
        self.names = [n for n, _ in sockets]
        self.socks = []
        for _, a in sockets:
            if a[0] == "tcp":
                s = socket.socket(socket.AF_INET6 if ":" in a[1] else socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((a[1], a[2]))
            else:
                _, path, mode, group = a
                if os.path.exists(path):
                    os.unlink(path)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(path)
                os.chmod(path, mode)
                if group:
                    os.chown(path, -1, grp.getgrnam(group).gr_gid)
            s.listen(511)
            self.socks.append(s)
        self.proc = None

    def start(self, cmd, log_path, extra_env=None):
        """Starts `cmd` with the sockets at fds 3.. and the LISTEN_* variables; returns the Popen
        (its pid is the service's: `sh` execs it, so LISTEN_PID matches)."""
        n = len(self.socks)
        # Out of the way first, so the dup2 onto 3.. never overwrites a source.
        high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 200) for s in self.socks]

        def place():
            for i, h in enumerate(high):
                os.dup2(h, 3 + i)           # dup2 clears FD_CLOEXEC: the service inherits them
        env = dict(os.environ)
        env.update(extra_env or {})
        env["LISTEN_FDS"] = str(n)
        env["LISTEN_FDNAMES"] = ":".join(self.names)
        env.pop("LISTEN_PID", None)
        log = open(log_path, "ab")
        try:
            self.proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *cmd], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=place, pass_fds=tuple(range(3, 3 + n)))
        finally:
            log.close()
            for h in high:
                os.close(h)
        return self.proc

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []
