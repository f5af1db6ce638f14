// Two-phase start, phase two: the one function that drops every privilege, in a fixed order
// (DESIGN §1): setgroups, setresgid, bounding set, setresuid, capability sets, ambient set,
// NO_NEW_PRIVS, not dumpable — then proves setuid(0) fails. Failure is fatal to the caller.
import Foundation
import CMailShims
import CLibcap
import Logging

public struct SystemUser: Sendable, Equatable {
    public var name: String, uid: uid_t, gid: gid_t, home: String

    public static func lookup(_ name: String) -> SystemUser? {
        var pw = passwd(), result: UnsafeMutablePointer<passwd>? = nil
        var buf = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &pw, &buf, buf.count, &result) == 0, result != nil else { return nil }
        return SystemUser(name: name, uid: pw.pw_uid, gid: pw.pw_gid, home: String(cString: pw.pw_dir))
    }
    public static func lookupGroup(_ name: String) -> gid_t? {
        var gr = group(), result: UnsafeMutablePointer<group>? = nil
        var buf = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &gr, &buf, buf.count, &result) == 0, result != nil else { return nil }
        return gr.gr_gid
    }
}

public struct PrivilegeError: Error, CustomStringConvertible {
    public var step: String, errno: Int32
    public init(step: String, errno: Int32) { self.step = step; self.errno = errno }
    public var description: String { "\(step) failed: \(String(cString: strerror(errno)))" }
}

public enum Privileges {
    public static var isRoot: Bool { geteuid() == 0 }

    /// Who this process will run as: the configured user as root; in development mode
    /// (not root) the current user.
    public static func targetUser(configured name: String) -> SystemUser? {
        SystemUser.lookup(isRoot ? name : String(cString: getpwuid(getuid())!.pointee.pw_name))
    }

    /// Drops to `user` for good. As non-root (development mode) only NO_NEW_PRIVS is set (the
    /// dumpable bit is left alone), and the log says that privileges were not dropped.
    public static func drop(to user: SystemUser, logger: Logger) throws {
        if !isRoot {
            logger.notice("development mode: running as uid \(getuid()), privileges not dropped (would be \(user.name))")
            try check(mail_set_no_new_privs(), "prctl(PR_SET_NO_NEW_PRIVS)")
            return
        }
        try check(setgroups(0, nil), "setgroups([])")
        try check(mail_setresgid(user.gid, user.gid, user.gid), "setresgid(\(user.gid))")
        // The bounding set can only shrink while we still hold CAP_SETPCAP, i.e. before setresuid.
        try check(mail_drop_bounding_set() >= 0 ? 0 : -1, "prctl(PR_CAPBSET_DROP)")
        try check(mail_setresuid(user.uid, user.uid, user.uid), "setresuid(\(user.uid))")
        // The kernel clears permitted/effective on the uid change; clear inheritable too, explicitly.
        guard let empty = cap_init() else { throw PrivilegeError(step: "cap_init", errno: errno) }
        defer { cap_free(UnsafeMutableRawPointer(empty)) }
        try check(cap_set_proc(empty), "cap_set_proc(empty)")
        try check(mail_clear_ambient_caps(), "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
        try check(mail_set_no_new_privs(), "prctl(PR_SET_NO_NEW_PRIVS)")
        try check(mail_set_dumpable(0), "prctl(PR_SET_DUMPABLE, 0)")
        // Prove it: getting root back must be impossible.
        if setuid(0) == 0 || seteuid(0) == 0 || getuid() == 0 || geteuid() == 0 {
            throw PrivilegeError(step: "verify setuid(0) fails", errno: EPERM)
        }
    }

    private static func check(_ rc: Int32, _ step: String) throws {
        if rc != 0 { throw PrivilegeError(step: step, errno: errno) }
    }

    /// SIGTERM this process when the master goes away (set after the drop: a credential change clears it).
    public static func dieWithParent() { _ = mail_set_parent_death_signal(SIGTERM) }
}
