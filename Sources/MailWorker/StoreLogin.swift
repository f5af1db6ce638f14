// A login checked by the store (DESIGN §2, §5), for the workers whose sessions open a store
// session (imapd, pop3d): one call, and the store's refusals mapped to one outcome.
import MailIPC

/// The store's answer to a login.
public enum StoreLoginOutcome: Sendable, Equatable {
    /// `canonical` is the user's address; the services are now bound to that user.
    case success(canonical: String)
    case failure                 // wrong user or password
    case tempFail                // the store could not decide now (IMAP [UNAVAILABLE], POP3 [SYS/TEMP])
    case blocked                 // this client address is over its failure budget: nothing checked
}

public enum StoreLogin {
    /// Asks the store; on success `opened` gets the new store session (the caller binds itself
    /// to it and ends the one it had).
    public static func authenticate(_ rpc: RPCClient, user: String, password: String, client: String, service: String,
                                    opened: (SessionOpened) -> Void) async -> StoreLoginOutcome {
        do {
            let s = try await rpc.call(Authenticate(user: user, password: password, client: client, service: service)).get()
            opened(s)
            return .success(canonical: s.user)
        } catch let e as RPCError where e.code == .denied {
            return .failure
        } catch let e as RPCError where e.code == .throttled {
            return .blocked
        } catch {
            return .tempFail
        }
    }
}
