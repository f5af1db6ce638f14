// Not-authenticated state (RFC 9051 §6.2): STARTTLS, LOGIN, AUTHENTICATE PLAIN and LOGIN with
// SASL-IR (RFC 4959). Plaintext credentials only over TLS or from trusted loopback (DESIGN §5);
// failures are delayed, counted and logged in the fail2ban shape (AuthLog).
import Foundation
import MailCore
import MailSyntax
import IMAPProtocol

extension IMAPSession {
    func startTLS(_ tag: String) async -> Completion {
        guard config.startTLSAvailable, !tlsActive else { return .bad("TLS is already active or not available") }
        // RFC 9051 §6.2.1: the tagged OK, then the handshake; nothing pipelined before it counts.
        await tagged(tag, .ok("Begin TLS negotiation now"))
        await flush()
        do {
            try await connection.startTLS()
        } catch {
            logger.info("STARTTLS failed", metadata: ["error": "\(error)"])
            finished = true
        }
        return .alreadyWritten
    }

    func login(user: String, password: String, mechanism: String) async -> Completion {
        guard plaintextAllowed else {
            return .no("Plaintext authentication is disallowed without TLS", code: "PRIVACYREQUIRED")
        }
        switch await services.authenticate(user: user, password: password, client: client) {
        case .success(let canonical):
            self.user = canonical
            state = .authenticated
            logger[metadataKey: "user"] = "\(canonical)"
            connection.authenticated(user: canonical)
            logger.info("login", metadata: ["mechanism": "\(mechanism)", "client": "\(client)"])
            return .ok("Logged in", code: "CAPABILITY \(capabilities())")
        case .failure:
            authFailures += 1
            let failures = recordAuthFailure?() ?? authFailures
            AuthLog.failed(logger: logger, client: client, user: user, mechanism: mechanism, failures: failures)
            await flush()
            if config.authFailureDelay > 0 { try? await Task.sleep(nanoseconds: UInt64(config.authFailureDelay * 1e9)) }
            return .no("Authentication failed", code: "AUTHENTICATIONFAILED")
        case .blocked:
            AuthLog.refused(logger: logger, client: client, user: user)
            if config.authFailureDelay > 0 { try? await Task.sleep(nanoseconds: UInt64(config.authFailureDelay * 1e9)) }
            return .no("Authentication failed", code: "AUTHENTICATIONFAILED")
        case .tempFail:
            return .no("Temporary authentication failure", code: "UNAVAILABLE")
        }
    }

    /// Reads one continuation line (base64 or "*"); nil when the connection ended.
    func continuationLine(_ prompt: String) async -> [UInt8]? {
        var w = writer(); w.continuation(prompt); await emit(w); await flush()
        while let input = await inputs.next() {
            switch input {
            case .framed(.unit(var bytes)):
                while let l = bytes.last, l == UInt8(ascii: "\n") || l == UInt8(ascii: "\r") { bytes.removeLast() }
                return bytes
            case .mailboxChanged(let m): notified = max(notified, m)
            case .framed(.continuationNeeded): continue
            default:
                await handle(input)
                return nil
            }
        }
        finished = true
        return nil
    }

    func authenticate(mechanism: String, initial: String?) async -> Completion {
        let mech = mechanism.uppercased()
        guard mech == "PLAIN" || mech == "LOGIN" else { return .no("Unsupported authentication mechanism", code: "CANNOT") }
        guard plaintextAllowed else {
            return .no("Plaintext authentication is disallowed without TLS", code: "PRIVACYREQUIRED")
        }
        let cancelled = Completion.bad("Authentication cancelled")
        let malformed = Completion.bad("Invalid base64 data")
        /// One SASL response: the initial one (SASL-IR, "=" for empty, RFC 4959 §3) or a
        /// continuation line after `prompt` ("*" cancels, RFC 9051 §6.2.2).
        enum Response { case data([UInt8]), cancelled, malformed }
        func response(initial: String?, prompt: String) async -> Response {
            if let initial {
                if initial == "=" { return .data([]) }
                return Base64.decode(Array(initial.utf8)).map { .data($0) } ?? .malformed
            }
            guard let line = await continuationLine(prompt), line != [UInt8(ascii: "*")] else { return .cancelled }
            return Base64.decode(line).map { .data($0) } ?? .malformed
        }
        func failed(_ r: Response) -> Completion { if case .cancelled = r { return cancelled }; return malformed }
        if mech == "PLAIN" {
            let r = await response(initial: initial, prompt: "")
            guard case .data(let data) = r else { return failed(r) }
            // RFC 4616 §2: [authzid] NUL authcid NUL passwd
            let parts = data.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return malformed }
            let authz = String(decoding: parts[0], as: UTF8.self), authc = String(decoding: parts[1], as: UTF8.self)
            guard authz.isEmpty || authz == authc else { return .no("Authorization identity not allowed", code: "AUTHORIZATIONFAILED") }
            return await login(user: authc, password: String(decoding: parts[2], as: UTF8.self), mechanism: "plain")
        }
        // LOGIN (draft-murchison-sasl-login): "Username:" then "Password:".
        let u = await response(initial: initial, prompt: "VXNlcm5hbWU6")
        guard case .data(var userBytes) = u else { return failed(u) }
        let p = await response(initial: nil, prompt: "UGFzc3dvcmQ6")
        guard case .data(let pass) = p else { return failed(p) }
        if userBytes.last == 0 { userBytes.removeLast() }
        return await login(user: String(decoding: userBytes, as: UTF8.self), password: String(decoding: pass, as: UTF8.self), mechanism: "login")
    }
}
