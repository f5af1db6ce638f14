// DATA framing tests: dot-unstuffing (RFC 5321 §4.5.2), end-of-data only at CRLF.CRLF,
// SMTP smuggling sequences under both bare-LF policies, text-line limit, large bodies.
import Foundation
import SMTPProtocol
import MailSyntax
import XCTest

final class DataReaderTests: XCTestCase {
    enum Outcome: Equatable {
        case delivered(String)
        case refused(SMTPReply)
    }

    /// Runs one LMTP transaction with two recipients whose DATA section is `data`
    /// (everything after "DATA\r\n", including the final dot), then a NOOP.
    func transact(_ data: String, policy: BareLinefeedPolicy, limits: SMTPLimits = .lmtp,
                  bytewise: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> (Outcome, [SMTPAction]) {
        var glue = ScriptedGlue(lmtpConfig(limits: limits, bareLinefeed: policy))
        let text = "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n" + data + "NOOP\r\n"
        if bytewise { glue.feedBytewise(text) } else { glue.feed(text) }
        let afterData = Array(glue.replies.drop { $0 != .startMailInput }.dropFirst())
        XCTAssertEqual(afterData.last, .ok, "NOOP after the message", file: file, line: line)
        XCTAssertEqual(glue.bodies.count, 1, "exactly one message", file: file, line: line)
        let perRecipient = Array(afterData.dropLast())
        XCTAssertEqual(perRecipient.count, 2, "one reply per recipient", file: file, line: line)
        XCTAssertEqual(Set(perRecipient.map { $0.code }).count, 1, file: file, line: line)
        if let body = glue.bodies.first, let body {
            return (.delivered(String(decoding: body, as: UTF8.self)), glue.actions)
        }
        return (.refused(perRecipient.first ?? .ok), glue.actions)
    }

    func testDotStuffing() {
        let table: [(String, String)] = [
            ("hello\r\n.\r\n", "hello\r\n"),
            (".\r\n", ""),                                       // body that is empty
            ("..\r\n.\r\n", ".\r\n"),                            // body that is just "."
            ("..hidden\r\n.\r\n", ".hidden\r\n"),
            ("...\r\n.\r\n", "..\r\n"),
            (".x\r\n.\r\n", "x\r\n"),                            // §4.5.2: first "." of any line deleted
            ("a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"),
            ("a.\r\n. \r\n .\r\n.\r\n", "a.\r\n \r\n .\r\n"),
            ("\r\n\r\n.\r\n", "\r\n\r\n"),
            ("no dot at end\r\n..\r\n.\r\n", "no dot at end\r\n.\r\n"),
        ]
        for (data, expected) in table {
            for bytewise in [false, true] {
                let (outcome, _) = transact(data, policy: .reject, bytewise: bytewise)
                XCTAssertEqual(outcome, .delivered(expected), data.debugDescription)
            }
        }
    }

    /// The three smuggling sequences (and variants) never end a message.
    func testSmugglingSequencesNeverSplitAMessage() {
        let smuggled = "MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nforged\r\n"
        // (data, body delivered under .normalize)
        let table: [(String, String)] = [
            ("a\n.\n" + smuggled + ".\r\n", "a\r\n.\r\n" + smuggled),
            ("a\r.\r\n" + smuggled + ".\r\n", "a\r\n.\r\n" + smuggled),
            ("a\n.\r\n" + smuggled + ".\r\n", "a\r\n.\r\n" + smuggled),
            ("a\r\n.\n" + smuggled + ".\r\n", "a\r\n.\r\n" + smuggled),
            ("a\r\n.\r" + smuggled + ".\r\n", "a\r\n.\r\n" + smuggled),
            ("a\r\r\n.\r\n", "a\r\n\r\n"),
            ("a\rb\r\n.\r\n", "a\r\nb\r\n"),
            ("a\nb\r\n.\r\n", "a\r\nb\r\n"),
            ("\n.\n.\r\n.\r\n", "\r\n.\r\n.\r\n"),
            ("\n..x\r\n.\r\n", "\r\n.x\r\n"),                   // unstuffing still applies after a bare LF
            (".\n.\r\n.\r\n", ".\r\n.\r\n"),
        ]
        for (data, normalized) in table {
            for bytewise in [false, true] {
                let (rejected, rejectActions) = transact(data, policy: .reject, bytewise: bytewise)
                XCTAssertEqual(rejected, .refused(.bareLinefeed), data.debugDescription)
                XCTAssertEqual(rejectActions.filter { $0 == .abortMessage }.count, 1)
                XCTAssertFalse(rejectActions.contains { if case .checkRecipient(let p) = $0 { return p.localPart == "victim" }; return false },
                               "smuggled command must not be executed")
                let (accepted, _) = transact(data, policy: .normalize, bytewise: bytewise)
                XCTAssertEqual(accepted, .delivered(normalized), data.debugDescription)
            }
        }
        XCTAssertEqual(SMTPReply.bareLinefeed.code, 550)
        XCTAssertEqual(SMTPReply.bareLinefeed.enhanced, "5.5.2")
    }

    func testTextLineLimit() {
        var limits = SMTPLimits()
        limits.maxTextLine = 100
        let fits = String(repeating: "a", count: 98) + "\r\n"         // 100 with CRLF
        let stuffedFits = "." + String(repeating: "b", count: 97) + "\r\n"
        let tooLong = String(repeating: "c", count: 99) + "\r\n"      // 101
        XCTAssertEqual(transact(fits + stuffedFits + ".\r\n", policy: .reject, limits: limits).0,
                       .delivered(fits + String(stuffedFits.dropFirst())))
        XCTAssertEqual(transact(fits + tooLong + fits + ".\r\n", policy: .reject, limits: limits).0, .refused(.lineTooLong))
        XCTAssertEqual(transact(fits + tooLong + ".\r\n", policy: .reject, limits: limits, bytewise: true).0, .refused(.lineTooLong))
        // Default LMTP limits: no text-line limit.
        let huge = String(repeating: "d", count: 100_000) + "\r\n"
        XCTAssertEqual(transact(huge + ".\r\n", policy: .reject).0, .delivered(huge))
    }

    /// A 20 MB body, dot-stuffed and fed in network-sized pieces, comes out exactly in
    /// fixed-size chunks that concatenate to the original.
    func testTwentyMegabyteBody() {
        var rng = SplitMix(seed: 7)
        var original: [UInt8] = []
        original.reserveCapacity(20 * 1024 * 1024 + 200)
        var wire: [UInt8] = []
        wire.reserveCapacity(21 * 1024 * 1024)
        let alphabet = Array(ascii: "abcdefghijklmnopqrstuvwxyz0123456789 .-=")
        while original.count < 20 * 1024 * 1024 {
            let length = Int.random(in: 0...200, using: &rng)
            var line: [UInt8] = []
            for _ in 0..<length { line.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
            if rng.next() % 10 == 0 { line.insert(UInt8(ascii: "."), at: 0) }
            original += line + [13, 10]
            if line.first == UInt8(ascii: ".") { wire.append(UInt8(ascii: ".")) }  // stuffing
            wire += line + [13, 10]
        }
        wire += Array(ascii: ".\r\n")

        var session = SMTPSession(config: lmtpConfig(limits: .lmtp), clientAddress: "unix")
        _ = session.receive(Array(ascii: "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\n"))
        _ = session.recipientChecked(.accept)
        _ = session.receive(Array(ascii: "DATA\r\n"))
        let start = Date()
        var received: [UInt8] = []
        received.reserveCapacity(original.count)
        var chunkSizes: [Int] = []
        var ended = false
        var i = 0
        while i < wire.count {
            let end = min(i + 65_536 + 17, wire.count)
            for action in session.receive(Array(wire[i..<end])) {
                switch action {
                case .messageChunk(let chunk): received += chunk; chunkSizes.append(chunk.count)
                case .endMessage: ended = true
                default: XCTFail("unexpected \(action)")
                }
            }
            i = end
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(ended)
        XCTAssertEqual(received.count, original.count)
        XCTAssertTrue(received == original)
        XCTAssertTrue(chunkSizes.dropLast().allSatisfy { $0 == 64 * 1024 })
        XCTAssertEqual(session.deliveryFinished([.delivered]), [.reply(.delivered(to: MailPath(localPart: "a", domain: "example.org")))])
        print("20 MB body: \(chunkSizes.count) chunks in \(String(format: "%.3f", elapsed)) s")
    }

    /// Chunk boundaries do not depend on how the input was cut.
    func testChunkBoundariesAreDeterministic() {
        var limits = SMTPLimits.lmtp
        limits.messageChunkSize = 5
        let data = "line one\r\n..two\r\nthree\r\n.\r\n"
        let (whole, wholeActions) = transact(data, policy: .reject, limits: limits)
        let (bytewise, bytewiseActions) = transact(data, policy: .reject, limits: limits, bytewise: true)
        XCTAssertEqual(whole, .delivered("line one\r\n.two\r\nthree\r\n"))
        XCTAssertEqual(whole, bytewise)
        XCTAssertEqual(wholeActions, bytewiseActions)
        let chunks = wholeActions.compactMap { if case .messageChunk(let c) = $0 { return c.count } else { return nil } }
        XCTAssertEqual(chunks, [5, 5, 5, 5, 3])
    }
}
