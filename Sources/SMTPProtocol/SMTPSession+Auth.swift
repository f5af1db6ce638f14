// SMTPSession: the AUTH exchange (RFC 4954) with PLAIN and LOGIN; credentials go to the glue
// in `.authenticate` and never into a log line.

extension SMTPSession {
    // MARK: - AUTH (RFC 4954)

    mutating func startAuth(_ name: String, _ initialResponse: ArraySlice<UInt8>?, _ actions: inout [SMTPAction]) {
        // The table guarded needsEHLO, notAuthenticated and outsideTransaction.
        guard isAuthAvailable else { return protocolError(.tlsRequiredForAuth, &actions) }
        guard let mechanism = SASLMechanism(rawValue: name), config.authMechanisms.contains(mechanism) else {
            return protocolError(.authMechanismUnknown, &actions)
        }
        guard let initialResponse else {
            switch mechanism {
            case .plain:
                authExchange = .plain
                actions.append(.reply(.authChallengeEmpty))
            case .login:
                authExchange = .loginUsername
                actions.append(.reply(.authChallengeUsername))
            }
            return
        }
        guard let decoded = SASL.decodeResponse(initialResponse) else {
            return protocolError(.authBadBase64, &actions)
        }
        switch mechanism {
        case .plain:
            finishPlain(decoded, &actions)
        case .login:
            // LOGIN with an initial response: it is the user name.
            loginUsername(decoded, &actions)
        }
    }

    /// A line while a SASL exchange is in progress (RFC 4954 §4).
    mutating func authResponse(_ line: Slice<UnsafeBufferPointer<UInt8>>, _ actions: inout [SMTPAction]) {
        guard let exchange = authExchange else { return }
        authExchange = nil
        let bytes = ArraySlice(line)
        if bytes.count == 1, bytes.first == UInt8(ascii: "*") {
            return protocolError(.authCancelled, &actions)
        }
        guard let decoded = SASL.decodeResponse(bytes) else {
            return protocolError(.authBadBase64, &actions)
        }
        switch exchange {
        case .plain:
            finishPlain(decoded, &actions)
        case .loginUsername:
            loginUsername(decoded, &actions)
        case .loginPassword(let user):
            guard let password = SASL.parseLoginField(decoded) else {
                return authFailure(user: user, mechanism: .login, &actions)
            }
            requestAuthentication(user: user, password: password, mechanism: .login, &actions)
        }
    }

    mutating func loginUsername(_ decoded: [UInt8], _ actions: inout [SMTPAction]) {
        guard let user = SASL.parseLoginField(decoded) else {
            return authFailure(user: String(decoding: decoded, as: UTF8.self), mechanism: .login, &actions)
        }
        authExchange = .loginPassword(user)
        actions.append(.reply(.authChallengePassword))
    }

    mutating func finishPlain(_ message: [UInt8], _ actions: inout [SMTPAction]) {
        switch SASL.parsePlain(message) {
        case .success(let (user, password)):
            requestAuthentication(user: user, password: password, mechanism: .plain, &actions)
        case .failure(.malformed(let user)), .failure(.authzidMismatch(let user)):
            authFailure(user: user, mechanism: .plain, &actions)
        case .failure(.badBase64):
            protocolError(.authBadBase64, &actions)
        }
    }

    mutating func requestAuthentication(user: String, password: String, mechanism: SASLMechanism,
                                                _ actions: inout [SMTPAction]) {
        waiting = .auth(mechanism, user: user)
        actions.append(.authenticate(user: user, password: password))
    }

    /// Counts a failure, tells the glue, and answers 535 now or after `.delay`.
    mutating func authFailure(user: String, mechanism: SASLMechanism, _ actions: inout [SMTPAction]) {
        authFailures += 1
        actions.append(.authFailed(user: user, mechanism: mechanism, failures: authFailures))
        let delay = config.authFailureDelay.delay(afterFailure: authFailures)
        if delay > .zero {
            waiting = .delay
            actions.append(.delay(delay))
            return
        }
        finishAuthFailure(&actions)
    }

    mutating func finishAuthFailure(_ actions: inout [SMTPAction]) {
        actions.append(.reply(.authCredentialsInvalid))
        if authFailures >= config.limits.maxAuthFailures {
            actions.append(.reply(.tooManyAuthFailures))
            close(&actions)
        }
    }
}
