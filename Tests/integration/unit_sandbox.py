#!/usr/bin/python3
# postern.service's sandbox without systemd (it is not PID 1 here): reads the unit's [Service]
# section and applies what it says, the way systemd's exec code does, then execs the command.
#
#   unit_sandbox.py /lib/systemd/system/postern.service -- /usr/libexec/postern/master -c ...
#
# Applied: a private mount namespace with ProtectSystem=strict (every mount read-only but
# ReadWritePaths= and RuntimeDirectory=), ProtectHome=yes, PrivateTmp, PrivateDevices (a /dev with
# null zero full random urandom tty), ProtectKernelTunables/ProtectControlGroups (/sys read-only),
# ProtectProc=invisible + ProcSubset=pid (a proc mount with hidepid=invisible,subset=pid); UMask;
# SupplementaryGroups;
# CapabilityBoundingSet; NoNewPrivileges; MemoryDenyWriteExecute (the kernel's PR_SET_MDWE and
# systemd's seccomp rules for mmap/mprotect/pkey_mprotect/shmat); a seccomp allow list built from
# SystemCallFilter= (groups expanded by `systemd-analyze syscall-filter`) with SystemCallErrorNumber=,
# RestrictAddressFamilies= (socket(2) by family), LockPersonality, RestrictNamespaces (clone flags,
# clone3 answers ENOSYS as under systemd), SystemCallArchitectures=native.
# Not applied: PrivateIPC, KeyringMode, ProtectHostname/ProtectClock's namespaces and device ACL,
# RestrictRealtime, RestrictSUIDSGID (no setuid binary is run), cgroup device policy.
# Needs Debian's python3 with python3-seccomp (/usr/bin/python3), run as root.
import ctypes
import errno
import os
import subprocess
import sys

import seccomp

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 24, 38, 65, 1
PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000
PER_LINUX, PERSONALITY_QUERY = 0, 0xFFFFFFFF
FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE"]


def service_settings(path):
    """[Service] as a list of (key, value), in order (keys may repeat)."""
    out, section = [], None
    for raw in open(path):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            k, v = line.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def last(settings, key, default=None):
    vals = [v for k, v in settings if k == key]
    return vals[-1] if vals else default


def yes(settings, key):
    return (last(settings, key, "no") or "no").lower() in ("yes", "true", "1", "on")


def run(*cmd):
    subprocess.run(cmd, check=True)


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4].replace("\\040", " ") for l in f]


def under(p, roots):
    return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)


def setup_mounts(s):
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    run("mount", "--make-rprivate", "/")
    writable = []
    for d in (last(s, "RuntimeDirectory") or "").split():
        p = "/run/" + d
        os.makedirs(p, exist_ok=True)
        os.chmod(p, int(last(s, "RuntimeDirectoryMode", "0755"), 8))
        writable.append(p)
    for v in [v for k, v in s if k == "ReadWritePaths"]:
        for p in v.split():
            optional = p.startswith("-")
            p = p.lstrip("-")
            if optional and not os.path.exists(p):
                continue
            writable.append(p)
    for p in writable:
        run("mount", "--bind", p, p)
    private = []
    if yes(s, "PrivateTmp"):
        for p in ("/tmp", "/var/tmp"):
            run("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", p)
            private.append(p)
    if yes(s, "PrivateDevices"):
        stage = "/tmp/.postern-sandbox-dev"
        os.makedirs(stage, exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,noexec", "tmpfs", stage)
        for n in ("null", "zero", "full", "random", "urandom", "tty"):
            open(os.path.join(stage, n), "w").close()
            run("mount", "--bind", "/dev/" + n, os.path.join(stage, n))
        for d in ("pts", "shm"):
            os.makedirs(os.path.join(stage, d))
        run("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", os.path.join(stage, "shm"))
        for i, n in enumerate(("stdin", "stdout", "stderr")):
            os.symlink(f"/proc/self/fd/{i}", os.path.join(stage, n))
        os.symlink("/proc/self/fd", os.path.join(stage, "fd"))
        run("mount", "--move", stage, "/dev")
    if last(s, "ProtectHome", "no") == "yes":
        for p in ("/home", "/root", "/run/user"):
            if os.path.isdir(p):
                run("mount", "-t", "tmpfs", "-o", "ro,mode=000,nosuid,nodev,noexec", "tmpfs", p)
                private.append(p)
    if last(s, "ProtectSystem") == "strict":
        keep = writable + private + ["/proc", "/dev"]
        for mp in mount_points():
            if not under(mp, keep):
                subprocess.run(["mount", "-o", "remount,bind,ro", mp], stderr=subprocess.DEVNULL)
    elif yes(s, "ProtectKernelTunables") or yes(s, "ProtectControlGroups"):
        for mp in mount_points():
            if under(mp, ["/sys"]):
                subprocess.run(["mount", "-o", "remount,bind,ro", mp], stderr=subprocess.DEVNULL)
    proc_opts = []
    if last(s, "ProtectProc") in ("invisible", "noaccess", "ptraceable"):
        proc_opts.append("hidepid=" + last(s, "ProtectProc"))
    if last(s, "ProcSubset") == "pid":
        proc_opts.append("subset=pid")
    if proc_opts:
        run("mount", "-t", "proc", "-o", ",".join(["nosuid", "nodev", "noexec"] + proc_opts), "proc", "/proc")
    elif yes(s, "ProtectKernelTunables"):
        run("mount", "--bind", "/proc/sys", "/proc/sys")
        run("mount", "-o", "remount,bind,ro", "/proc/sys")


def syscall_groups():
    """`systemd-analyze syscall-filter`: group -> members (names or @groups)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        if not line.startswith((" ", "\t")) and t.startswith("@"):
            cur = t
            groups[cur] = []
        elif cur:
            groups[cur].append(t)
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            out |= expand(groups.get(n, []), groups, seen)
        else:
            out.add(n)
    return out


def allowed_syscalls(s):
    groups = syscall_groups()
    allow = None
    for k, v in s:
        if k != "SystemCallFilter":
            continue
        deny = v.startswith("~")
        names = expand(v.lstrip("~").split(), groups)
        if allow is None:
            allow = set() if deny else names
            if deny:
                raise SystemExit("unit_sandbox: a deny-list SystemCallFilter= first is not reproduced")
        elif deny:
            allow -= names
        else:
            allow |= names
    return allow


def seccomp_filter(s):
    allow = allowed_syscalls(s)
    if allow is None:
        return None
    err = getattr(errno, last(s, "SystemCallErrorNumber", "EPERM"))
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(err))
    special = {"socket", "mmap", "mprotect", "pkey_mprotect", "shmat", "personality", "clone", "clone3", "unshare", "setns"}
    for name in sorted(allow - special):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass                                   # not a syscall of this architecture
    A = seccomp.Arg
    families = (last(s, "RestrictAddressFamilies") or "").split()
    if "socket" in allow:
        if families:
            for fam in sorted({FAMILIES[x] for x in families}):
                f.add_rule(seccomp.ALLOW, "socket", A(0, seccomp.EQ, fam))
        else:
            f.add_rule(seccomp.ALLOW, "socket")
    mdwe = yes(s, "MemoryDenyWriteExecute")
    for name in ("mmap", "mprotect", "pkey_mprotect"):
        if name not in allow:
            continue
        if not mdwe:
            f.add_rule(seccomp.ALLOW, name)
        elif name == "mmap":                      # never writable and executable at once
            for ok in (0, PROT_WRITE, PROT_EXEC):
                f.add_rule(seccomp.ALLOW, name, A(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, ok))
        else:                                     # never made executable later
            f.add_rule(seccomp.ALLOW, name, A(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
    if "shmat" in allow:
        f.add_rule(seccomp.ALLOW, "shmat", *([A(2, seccomp.MASKED_EQ, SHM_EXEC, 0)] if mdwe else []))
    if "personality" in allow:
        if yes(s, "LockPersonality"):
            for p in (PER_LINUX, PERSONALITY_QUERY):
                f.add_rule(seccomp.ALLOW, "personality", A(0, seccomp.EQ, p))
        else:
            f.add_rule(seccomp.ALLOW, "personality")
    restrict_ns = yes(s, "RestrictNamespaces")
    if "clone" in allow:
        f.add_rule(seccomp.ALLOW, "clone", *([A(0, seccomp.MASKED_EQ, NS_FLAGS, 0)] if restrict_ns else []))
    if "clone3" in allow:
        # systemd answers clone3 with ENOSYS under RestrictNamespaces (it cannot look into the
        # struct), and glibc falls back to clone.
        if restrict_ns:
            f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        else:
            f.add_rule(seccomp.ALLOW, "clone3")
    for name in ("unshare", "setns"):
        if name in allow and not restrict_ns:
            f.add_rule(seccomp.ALLOW, name)
    return f


def main():
    if "--" not in sys.argv:
        raise SystemExit("usage: unit_sandbox.py UNIT -- COMMAND...")
    i = sys.argv.index("--")
    unit, cmd = sys.argv[1], sys.argv[i + 1:]
    s = service_settings(unit)
    f = seccomp_filter(s)                        # built before the mounts hide systemd-analyze's needs
    setup_mounts(s)
    os.chdir("/")
    os.umask(int(last(s, "UMask", "0022"), 8))
    groups = (last(s, "SupplementaryGroups") or "").split()
    if groups:
        import grp
        os.setgroups([grp.getgrnam(g).gr_gid for g in groups])
    bounding = last(s, "CapabilityBoundingSet")
    if bounding is not None:
        keep = {c.upper().removeprefix("CAP_") for c in bounding.split()}
        for n, name in enumerate(CAPS):
            if name not in keep and libc.prctl(PR_CAPBSET_DROP, n, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
                raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP CAP_{name}")
    if yes(s, "NoNewPrivileges") and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if yes(s, "MemoryDenyWriteExecute") and libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE")
    if f is not None:
        f.load()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
