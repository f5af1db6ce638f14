// Resolver on libunbound's asynchronous API: queries start with ub_resolve_async from any task;
// one thread per resolver waits on ub_fd with poll(2), runs ub_process (which calls back), and
// enforces each query's deadline with ub_cancel. No caller's thread or event loop ever blocks.
import CUnbound
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class UnboundResolver: Resolver, @unchecked Sendable {
    /// RFC 1035 §3.2.2/§3.2.4: TYPE A, MX, AAAA; CLASS IN.
    enum RRType { static let a: Int32 = 1, mx: Int32 = 15, aaaa: Int32 = 28, classIN: Int32 = 1 }
    /// RFC 1035 §4.1.1 RCODE 3, RFC 2136 §2.2 names for the others.
    static let rcodeNames: [Int32: String] = [1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"]
    /// Default per-query deadline: RFC 1123 §6.1.3.3 asks for a retransmission scheme, not a
    /// number; this is what a sender waits before it calls the lookup a temporary failure.
    public static let defaultTimeout: Double = 10

    private let core: Core

    /// `forwarder`: "ADDRESS" or "ADDRESS@PORT" (e.g. "127.0.0.1@5353") to send every query to;
    /// nil reads the servers of /etc/resolv.conf. `timeout`: seconds until a query is a
    /// temporary failure. `trustAnchorFile`: DNSSEC root key (e.g. /usr/share/dns/root.key)
    /// to validate with; `trustAnchors`: DS or DNSKEY records in zone-file text (a zone of
    /// one's own, tests). Without either every answer is insecure.
    public init(forwarder: String? = nil, timeout: Double = UnboundResolver.defaultTimeout, trustAnchorFile: String? = nil,
                trustAnchors: [String] = []) throws {
        guard let ctx = ub_ctx_create() else { throw DNSError.resolver("ub_ctx_create failed") }
        func check(_ rc: Int32, _ what: String) throws {
            guard rc == 0 else { ub_ctx_delete(ctx); throw DNSError.resolver("\(what): \(String(cString: ub_strerror(rc)))") }
        }
        // Threads, not a forked process: a privilege-separated worker must not fork.
        try check(ub_ctx_async(ctx, 1), "async mode")
        // A forwarder or resolv.conf server on loopback (a local cache, a test server) is allowed.
        try check(ub_ctx_set_option(ctx, "do-not-query-localhost:", "no"), "do-not-query-localhost")
        if let forwarder {
            try check(ub_ctx_set_fwd(ctx, forwarder), "forwarder \(forwarder)")
        } else {
            try check(ub_ctx_resolvconf(ctx, nil), "/etc/resolv.conf")
        }
        if let trustAnchorFile { try check(ub_ctx_add_ta_file(ctx, trustAnchorFile), "trust anchor \(trustAnchorFile)") }
        for ta in trustAnchors { try check(ub_ctx_add_ta(ctx, ta), "trust anchor \(ta)") }
        core = try Core(ctx: ctx, timeout: timeout)
    }

    deinit { core.shutdown() }

    /// Stops the polling thread; waiting queries end as temporary failures. Later queries throw.
    public func shutdown() { core.shutdown() }

    public func mx(_ domain: String) async throws -> MXAnswer {
        try await core.query(DNSName.normalized(domain), RRType.mx).mx
    }

    public func addresses(_ host: String) async throws -> AddressAnswer {
        // RFC 5321 §4.1.3 address literals: "[192.0.2.1]", "[IPv6:2001:db8::1]".
        var literal = host
        if literal.hasPrefix("[") && literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if literal.lowercased().hasPrefix("ipv6:") { literal = String(literal.dropFirst(5)) }
        if let address = ResolvedAddress(literal) { return .addresses([address], .insecure) }
        let name = try DNSName.normalized(host)
        async let aaaa = core.query(name, RRType.aaaa)
        async let a = core.query(name, RRType.a)
        return RawAnswer.addresses(aaaa: try await aaaa, a: try await a)
    }

    /// One raw query (tests, and record types the agent may need later: TLSA for DANE).
    public func query(_ name: String, type: Int32) async throws -> RawAnswer {
        try await core.query(DNSName.normalized(name), type)
    }

    /// The answer libunbound gave, classified (RFC 2308 §2.1 NXDOMAIN, §2.2 NODATA).
    static func classify(_ r: ub_result) -> RawAnswer {
        let dnssec: DNSSECStatus = r.secure != 0 ? .secure : .insecure
        if r.bogus != 0 { return .failure("DNSSEC validation failed: " + (r.why_bogus.map { String(cString: $0) } ?? "bogus")) }
        if r.rcode == 3 || r.nxdomain != 0 { return .nxdomain(dnssec) }
        if r.rcode != 0 { return .failure(rcodeNames[r.rcode] ?? "RCODE \(r.rcode)") }
        guard r.havedata != 0, let data = r.data, let len = r.len else { return .noData(dnssec) }
        var items = [[UInt8]](), i = 0
        while let p = data[i] {
            items.append(Array(UnsafeRawBufferPointer(start: p, count: Int(len[i]))))
            i += 1
        }
        return items.isEmpty ? .noData(dnssec) : .data(items, dnssec)
    }

    // MARK: the polling thread and the pending queries

    final class Pending {
        let id: Int
        let deadline: UInt64
        var asyncID: Int32 = 0
        var continuation: CheckedContinuation<RawAnswer, Error>?
        weak var core: Core?

        init(id: Int, deadline: UInt64, core: Core) {
            self.id = id
            self.deadline = deadline
            self.core = core
        }
    }

    final class Core: @unchecked Sendable {
        let ctx: OpaquePointer
        let timeoutNanos: UInt64
        private var lock = pthread_mutex_t()
        private var pending: [Int: Pending] = [:]
        private var nextID = 1
        private var stopped = false
        /// Queries between registration and the return of ub_resolve_async.
        private var starting = 0
        /// poll(2) also waits on this pipe's read end, so a new deadline or shutdown wakes it.
        private let wake: (read: Int32, write: Int32)
        private let exited = DispatchSemaphore(value: 0)

        init(ctx: OpaquePointer, timeout: Double) throws {
            self.ctx = ctx
            timeoutNanos = UInt64(max(timeout, 0.001) * 1e9)
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { ub_ctx_delete(ctx); throw DNSError.resolver("pipe: \(String(cString: strerror(errno)))") }
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            wake = (fds[0], fds[1])
            pthread_mutex_init(&lock, nil)
            let thread = Thread { [self] in run() }
            thread.name = "unbound"
            thread.start()
        }

        private func locked<T>(_ body: () -> T) -> T {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            return body()
        }

        private func poke() { var b: UInt8 = 1; _ = write(wake.write, &b, 1) }

        static func now() -> UInt64 {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        }

        func query(_ name: String, _ type: Int32) async throws -> RawAnswer {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<RawAnswer, Error>) in
                // Registered with its continuation before libunbound can call back; `starting`
                // keeps the context alive (shutdown waits) until ub_resolve_async has returned.
                let p: Pending? = locked {
                    guard !stopped else { return nil }
                    defer { nextID += 1; starting += 1 }
                    let p = Pending(id: nextID, deadline: Self.now() + timeoutNanos, core: self)
                    p.continuation = c
                    pending[p.id] = p
                    return p
                }
                guard let p else { return c.resume(throwing: DNSError.resolver("shut down")) }
                let box = Unmanaged.passRetained(p).toOpaque()
                var asyncID: Int32 = 0
                let rc = ub_resolve_async(ctx, name + ".", type, UnboundResolver.RRType.classIN, box, { arg, err, result in
                    let p = Unmanaged<Pending>.fromOpaque(arg!).takeRetainedValue()
                    let answer = err != 0 ? RawAnswer.failure(String(cString: ub_strerror(err)))
                                          : result.map { UnboundResolver.classify($0.pointee) } ?? .failure("no result")
                    if let result { ub_resolve_free(result) }
                    p.core?.complete(p.id, answer)
                }, &asyncID)
                locked { starting -= 1; p.asyncID = rc == 0 ? asyncID : 0 }
                if rc != 0 {
                    Unmanaged<Pending>.fromOpaque(box).release()
                    complete(p.id, .failure(String(cString: ub_strerror(rc))))
                    return
                }
                poke()
            }
        }

        /// Resumes query `id` with `answer` unless it already ended (timed out, shut down).
        func complete(_ id: Int, _ answer: RawAnswer) {
            locked { pending.removeValue(forKey: id).flatMap(Self.take) }?.resume(returning: answer)
        }

        /// `p`'s continuation, once: a query is resumed exactly once. Called with the lock held.
        private static func take(_ p: Pending) -> CheckedContinuation<RawAnswer, Error>? {
            defer { p.continuation = nil }
            return p.continuation
        }

        /// Ends `p` (already out of the table) with `answer`, cancelling it in libunbound, whose
        /// callback then never runs, so the box retained for it is released here.
        private func abandon(_ p: Pending, _ answer: RawAnswer) {
            let asyncID = locked { p.asyncID }
            if asyncID != 0 && ub_cancel(ctx, asyncID) == 0 { Unmanaged.passUnretained(p).release() }
            locked { Self.take(p) }?.resume(returning: answer)
        }

        private func run() {
            var fds = [pollfd(fd: ub_fd(ctx), events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            while true {
                let (stop, next) = locked { (stopped, pending.values.map(\.deadline).min()) }
                if stop { break }
                let now = Self.now()
                let wait: Int32 = next.map { $0 <= now ? 0 : Int32(min(($0 - now) / 1_000_000 + 1, 60_000)) } ?? -1
                fds[0].revents = 0; fds[1].revents = 0
                let n = poll(&fds, 2, wait)
                if n < 0 && errno != EINTR { break }
                if fds[1].revents != 0 { var buf = [UInt8](repeating: 0, count: 64); while read(wake.read, &buf, buf.count) > 0 {} }
                if fds[0].revents != 0 { ub_process(ctx) }
                expire(before: Self.now())
            }
            // Shut down: every waiting query ends; libunbound's threads stop with the context.
            locked { stopped = true }
            while locked({ starting }) > 0 { usleep(1000) }
            let rest = locked { () -> [Pending] in defer { pending.removeAll() }; return Array(pending.values) }
            for p in rest { abandon(p, .failure("resolver shut down")) }
            ub_ctx_delete(ctx)
            close(wake.read); close(wake.write)
            exited.signal()
        }

        /// Queries past their deadline end as a temporary failure.
        private func expire(before now: UInt64) {
            let late: [Pending] = locked {
                let l = pending.values.filter { $0.deadline <= now && $0.asyncID != 0 }
                for p in l { pending.removeValue(forKey: p.id) }
                return l
            }
            for p in late { abandon(p, .failure("timed out after \(Double(timeoutNanos) / 1e9) s")) }
        }

        func shutdown() {
            let first: Bool = locked { defer { stopped = true }; return !stopped }
            guard first else { return }
            poke()
            exited.wait()
        }
    }
}
