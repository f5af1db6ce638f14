// Phase two of every worker's start (DESIGN §1): drop to the worker user before reading a
// byte from any client; die with the master and obey its control pipe; never be killed by SIGPIPE.
import Foundation
import Logging
import MailCore
import MailPrivsep

public enum WorkerStart {
    /// Exits the process (EX_NOUSER no such user, EX_NOPERM drop failed) rather than run with privileges.
    @discardableResult
    public static func dropPrivileges(config: PosternConfig, logger: Logger) -> SystemUser {
        guard let user = Privileges.targetUser(configured: config.workerUser) else {
            logger.critical("no such system user: \(config.workerUser)"); exit(ExitStatus.noUser)
        }
        do { try Privileges.drop(to: user, logger: logger) } catch { logger.critical("privilege drop failed: \(error)"); exit(ExitStatus.noPerm) }
        ControlPipe.followMaster()
        signal(SIGPIPE, SIG_IGN)
        return user
    }
}
