// SEARCH keys (RFC 9051 §6.4.4) on real message bytes parsed by MIME.MessageParser: every key,
// AND/OR/NOT, Unicode case folding, decoded headers and bodies, and how little is read.
import XCTest
import MIME
@testable import MailStore

final class SearchEvaluatorTests: XCTestCase {

    // MARK: fixtures

    static func lines(_ l: [String]) -> [UInt8] { Array(l.joined(separator: "\r\n").utf8) }

    /// 2024-01-01 as SEARCH days; `t0` is that day 10:00 UTC.
    static let jan1 = Int(RFC5322Date.daysFromCivil(year: 2024, month: 1, day: 1))
    static let t0: Int64 = 1_704_103_200

    static let plain = lines([
        "Received: from mx.example.com by mail.example.org",
        "Received: from relay.example.net by mx.example.com",
        "From: Alice Example <alice@example.com>",
        "To: Bob <bob@example.org>",
        "Subject: Quarterly report",
        "Date: Mon, 1 Jan 2024 23:30:00 -0500",
        "Message-ID: <plain@example.com>",
        "X-Long: the first half of a folded",
        "  header value",
        "X-Mood: \u{C4}rger im B\u{FC}ro",
        "",
        "Hello Bob,",
        "the numbers are in. Stra\u{DF}e 7.",
        "",
    ])

    static let alternative = lines([
        "From: news@example.com",
        "Subject: Newsletter",
        "Date: Tue, 2 Jan 2024 08:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative; boundary=\"alt\"",
        "",
        "--alt",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "This is supercalifragi=",
        "listic news: M=C3=BCnchen calling.",
        "--alt",
        "Content-Type: text/html; charset=iso-8859-1",
        "Content-Transfer-Encoding: base64",
        "",
        "PHA+VmllbGUgR3L832UgYXVzIEv2bG48L3A+",
        "--alt--",
        "",
    ])

    static let encodedSubject = lines([
        "From: =?utf-8?Q?J=C3=B6rg?= <joerg@example.de>",
        "Subject: =?UTF-8?B?w4RSR0VS?= mit dem =?iso-8859-1?Q?B=FCro?=",
        "Date: Wed, 3 Jan 2024 09:00:00 +0100",
        "",
        "Kurzer Text.",
        "",
    ])

    static let attachment = lines([
        "From: carol@example.com",
        "Subject: Contract",
        "Date: Thu, 4 Jan 2024 12:00:00 +0000",
        "Content-Type: multipart/mixed; boundary=\"mix\"",
        "",
        "--mix",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Please find the contract attached.",
        "--mix",
        "Content-Type: application/pdf; name=\"contract.pdf\"",
        "Content-Disposition: attachment; filename=\"contract.pdf\"",
        "Content-Transfer-Encoding: base64",
        "",
        "JVBERi0xLjQgc2VjcmV0bmVlZGxlIGluc2lkZSB0aGUgYXR0YWNobWVudA==",
        "--mix",
        "Content-Type: text/plain; charset=windows-1252; name=\"notes.txt\"",
        "Content-Disposition: attachment; filename=\"notes.txt\"",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Price: =80 42, notes in a text attachment",
        "--mix",
        "Content-Type: message/rfc822",
        "",
        "From: dave@example.net",
        "Subject: Inner subject zebra",
        "",
        "Forwarded body with a giraffe.",
        "--mix--",
        "",
    ])

    static let undated = lines([
        "From: x@example.com",
        "Subject: no date here",
        "",
        "body",
        "",
    ])

    static let badDate = lines([
        "From: x@example.com",
        "Date: sometime last week",
        "",
        "body",
        "",
    ])

    /// Counts how often the evaluator reads the bytes.
    final class Reads { var count = 0 }

    func message(_ raw: [UInt8], uid: UInt32 = 1, modSeq: UInt64 = 10, flags: SystemFlags = [], keywords: Set<String> = [],
                 internalDate: Int64 = SearchEvaluatorTests.t0, reads: Reads = Reads()) -> SearchableMessage {
        SearchableMessage(uid: uid, modSeq: modSeq, flags: flags, keywords: keywords, internalDate: internalDate,
                          size: UInt64(raw.count), info: MessageParser.parse(raw), body: { reads.count += 1; return raw })
    }

    func match(_ q: SearchQuery, _ m: SearchableMessage, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        do { return try SearchEvaluator.matches(q, m) } catch { XCTFail("\(error)", file: file, line: line); return false }
    }

    // MARK: cheap keys

    func testAllAndEmptyAnd() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.all, m))
        XCTAssertTrue(match(.and([]), m))
        XCTAssertFalse(match(.not(.all), m))
    }

    func testUIDRanges() {
        let m = message(Self.plain, uid: 7)
        XCTAssertTrue(match(.uids([1...3, 7...7]), m))
        XCTAssertTrue(match(.uids([5...9]), m))
        XCTAssertFalse(match(.uids([1...6, 8...UInt32.max]), m))
        XCTAssertFalse(match(.uids([]), m))
    }

    func testFlagsAllSetOrAllClear() {
        let m = message(Self.plain, flags: [.seen, .flagged])
        XCTAssertTrue(match(.flags(.seen, set: true), m))
        XCTAssertTrue(match(.flags([.seen, .flagged], set: true), m))
        XCTAssertFalse(match(.flags([.seen, .deleted], set: true), m), "every flag of the mask must be set")
        XCTAssertTrue(match(.flags([.deleted, .draft], set: false), m))
        XCTAssertFalse(match(.flags([.seen, .deleted], set: false), m), "every flag of the mask must be clear")
        XCTAssertTrue(match(.flags(.answered, set: false), m))
    }

    func testKeywordCaseInsensitive() {
        let m = message(Self.plain, keywords: ["$Forwarded", "Work"])
        XCTAssertTrue(match(.keyword("$forwarded", set: true), m))
        XCTAssertTrue(match(.keyword("WORK", set: true), m))
        XCTAssertFalse(match(.keyword("home", set: true), m))
        XCTAssertTrue(match(.keyword("home", set: false), m))
        XCTAssertFalse(match(.keyword("work", set: false), m))
    }

    func testInternalDateDayInUTC() {
        let lastSecond = Int64(Self.jan1 + 1) * 86_400 - 1       // 2024-01-01 23:59:59 UTC
        let m = message(Self.plain, internalDate: lastSecond)
        XCTAssertTrue(match(.internalDate(.on, day: Self.jan1), m))
        XCTAssertFalse(match(.internalDate(.on, day: Self.jan1 + 1), m))
        XCTAssertTrue(match(.internalDate(.before, day: Self.jan1 + 1), m))
        XCTAssertFalse(match(.internalDate(.before, day: Self.jan1), m), "BEFORE is strictly earlier")
        XCTAssertTrue(match(.internalDate(.since, day: Self.jan1), m), "SINCE includes the day")
        XCTAssertFalse(match(.internalDate(.since, day: Self.jan1 + 1), m))
        let next = message(Self.plain, internalDate: lastSecond + 1)
        XCTAssertTrue(match(.internalDate(.on, day: Self.jan1 + 1), next))
    }

    func testInternalDateBeforeEpoch() {
        let m = message(Self.plain, internalDate: -1)                 // 1969-12-31 23:59:59
        XCTAssertTrue(match(.internalDate(.on, day: -1), m))
        XCTAssertTrue(match(.internalDate(.before, day: 0), m))
    }

    func testSizeIsStrict() {
        let m = message(Self.plain)
        let size = UInt64(Self.plain.count)
        XCTAssertTrue(match(.larger(size - 1), m))
        XCTAssertFalse(match(.larger(size), m))
        XCTAssertTrue(match(.smaller(size + 1), m))
        XCTAssertFalse(match(.smaller(size), m))
    }

    func testModSeqAtLeast() {
        let m = message(Self.plain, modSeq: 42)
        XCTAssertTrue(match(.modSeq(42), m))
        XCTAssertTrue(match(.modSeq(1), m))
        XCTAssertFalse(match(.modSeq(43), m))
    }

    // MARK: sent date

    func testSentDateIsTheDayInTheHeadersZone() {
        // 23:30 -0500 on Jan 1 is Jan 2 in UTC; RFC 9051 disregards the zone: Jan 1.
        let m = message(Self.plain)
        XCTAssertTrue(match(.sentDate(.on, day: Self.jan1), m))
        XCTAssertFalse(match(.sentDate(.on, day: Self.jan1 + 1), m))
        XCTAssertTrue(match(.sentDate(.before, day: Self.jan1 + 1), m))
        XCTAssertTrue(match(.sentDate(.since, day: Self.jan1), m))
        XCTAssertFalse(match(.sentDate(.since, day: Self.jan1 + 1), m))
    }

    func testSentDateWithoutParsableDateIsEpochLikeDovecot() {
        for raw in [Self.undated, Self.badDate] {
            let m = message(raw)
            XCTAssertTrue(match(.sentDate(.before, day: Self.jan1), m))
            XCTAssertTrue(match(.sentDate(.on, day: 0), m))
            XCTAssertFalse(match(.sentDate(.since, day: Self.jan1), m))
            XCTAssertFalse(match(.sentDate(.on, day: Self.jan1), m), "no fallback to the internal date")
        }
    }

    func testSentDateDoesNotReadTheBody() {
        let reads = Reads()
        XCTAssertTrue(match(.sentDate(.on, day: Self.jan1), message(Self.plain, reads: reads)))
        XCTAssertEqual(reads.count, 0, "the Date: value is in the parsed envelope")
    }

    // MARK: HEADER

    func testHeaderSubstringCaseInsensitive() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.header("Subject", "quarterly"), m))
        XCTAssertTrue(match(.header("subject", "RLY REP"), m))
        XCTAssertTrue(match(.header("FROM", "alice@EXAMPLE"), m))
        XCTAssertFalse(match(.header("Subject", "annual"), m))
        XCTAssertFalse(match(.header("To", "alice"), m), "only the named field")
    }

    func testHeaderEmptyStringMeansPresent() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.header("Message-ID", ""), m))
        XCTAssertTrue(match(.header("x-mood", ""), m))
        XCTAssertFalse(match(.header("Cc", ""), m))
        XCTAssertTrue(match(.not(.header("Cc", "")), m))
    }

    func testHeaderAnyOfRepeatedFields() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.header("Received", "mail.example.org"), m))
        XCTAssertTrue(match(.header("Received", "relay.example.net"), m))
    }

    func testHeaderUnfolded() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.header("X-Long", "folded  header"), m), "CRLF removed, the WSP after it kept")
        XCTAssertFalse(match(.header("X-Long", "folded\r\n"), m))
    }

    func testHeaderEncodedWordsDecoded() {
        let m = message(Self.encodedSubject)
        XCTAssertTrue(match(.header("Subject", "ÄRGER mit dem Büro"), m), "adjacent words and text, two charsets")
        XCTAssertTrue(match(.header("Subject", "ärger"), m))
        XCTAssertTrue(match(.header("From", "jörg"), m))
        XCTAssertFalse(match(.header("Subject", "w4RSR0VS"), m), "the encoded form is not searched")
    }

    func testHeaderRaw8BitLatin1() {
        let raw: [UInt8] = Array("Subject: Gr".utf8) + [0xFC, 0xDF, 0x65] + Array("\r\n\r\nbody\r\n".utf8)
        XCTAssertTrue(match(.header("Subject", "GRÜSSE"), message(raw)), "raw 8-bit read as windows-1252")
    }

    func testHeaderRawUTF8() {
        XCTAssertTrue(match(.header("X-Mood", "ÄRGER IM BÜRO"), message(Self.plain)))
    }

    func testHeaderIsTopLevelOnly() {
        let m = message(Self.attachment)
        XCTAssertFalse(match(.header("Subject", "zebra"), m), "the attached message's header is not the message's")
        XCTAssertFalse(match(.header("Content-Disposition", ""), m), "MIME part headers neither")
        XCTAssertTrue(match(.header("Subject", "contract"), m))
    }

    // MARK: BODY

    func testBodyPlain() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.body("numbers are in"), m))
        XCTAssertTrue(match(.body("HELLO BOB"), m))
        XCTAssertFalse(match(.body("Quarterly"), m), "BODY does not search the header")
    }

    func testBodyNeedleAcrossQPSoftLineBreak() {
        let m = message(Self.alternative)
        XCTAssertTrue(match(.body("supercalifragilistic"), m))
        XCTAssertTrue(match(.body("münchen"), m), "=C3=BC decoded, charset utf-8")
        XCTAssertFalse(match(.body("=C3=BC"), m))
    }

    func testBodyBase64HTMLInLatin1() {
        let m = message(Self.alternative)
        XCTAssertTrue(match(.body("grüße aus köln"), m))
        XCTAssertFalse(match(.body("PHA+VmllbGU"), m), "the base64 text is not searched")
    }

    func testBodyAttachmentBase64NotSearched() {
        let m = message(Self.attachment)
        XCTAssertFalse(match(.body("secretneedle"), m), "application/pdf is not text")
        XCTAssertFalse(match(.body("JVBERi0x"), m), "nor are its raw bytes")
        XCTAssertTrue(match(.body("contract attached"), m))
    }

    func testBodyTextAttachmentAndAttachedMessage() {
        let m = message(Self.attachment)
        XCTAssertTrue(match(.body("€ 42"), m), "text/plain attachment, windows-1252 QP")
        XCTAssertTrue(match(.body("giraffe"), m), "text of an attached message/rfc822")
        XCTAssertFalse(match(.body("zebra"), m), "headers of the attached message are not BODY")
    }

    func testBodyEmptyNeedleMatchesWithoutReading() {
        let reads = Reads()
        XCTAssertTrue(match(.body(""), message(Self.plain, reads: reads)))
        XCTAssertTrue(match(.text(""), message(Self.plain, reads: reads)))
        XCTAssertEqual(reads.count, 0)
    }

    func testBodyUnknownCharsetReadAsUTF8() {
        let raw = Self.lines(["Content-Type: text/plain; charset=x-made-up", "", "caf\u{E9} ol\u{E9}", ""])
        XCTAssertTrue(match(.body("CAFÉ"), message(raw)))
    }

    func testBodyUnknownTransferEncodingSearchedRaw() {
        let raw = Self.lines(["Content-Transfer-Encoding: x-strange", "", "visible words", ""])
        XCTAssertTrue(match(.body("visible"), message(raw)))
    }

    // MARK: TEXT

    func testTextSearchesHeadersAndBody() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.text("quarterly"), m), "header")
        XCTAssertTrue(match(.text("numbers"), m), "body")
        XCTAssertTrue(match(.text("x-mood: ärger"), m), "field name and value")
        XCTAssertFalse(match(.text("nowhere"), m))
    }

    func testTextSearchesPartAndAttachedHeaders() {
        let m = message(Self.attachment)
        XCTAssertTrue(match(.text("contract.pdf"), m), "MIME part header")
        XCTAssertTrue(match(.text("zebra"), m), "attached message's header")
        XCTAssertFalse(match(.text("secretneedle"), m))
    }

    func testTextDecodesEncodedWords() {
        XCTAssertTrue(match(.text("büro"), message(Self.encodedSubject)))
    }

    // MARK: case folding

    func testCaseFoldingUnicode() {
        let m = message(Self.plain)
        XCTAssertTrue(match(.header("X-Mood", "ärger"), m))
        XCTAssertTrue(match(.header("X-Mood", "ÄRGER"), m))
        XCTAssertTrue(match(.body("STRASSE"), m), "full case folding: ß = ss")
        XCTAssertTrue(match(.body("straße"), m))
        XCTAssertFalse(match(.header("X-Mood", "arger"), m), "diacritics are not folded (Dovecot)")
    }

    func testCaseFoldingDecomposedNeedle() {
        XCTAssertTrue(match(.header("X-Mood", "A\u{308}rger"), message(Self.plain)), "canonically equivalent")
    }

    func testCaseFoldingCyrillic() {
        let raw = Self.lines(["Subject: =?utf-8?B?0JfQsNCx0L7RgtCw?=", "", "x", ""])
        XCTAssertTrue(match(.header("Subject", "ЗАБОТА"), message(raw)))
        XCTAssertTrue(match(.header("Subject", "забота"), message(raw)))
    }

    // MARK: AND / OR / NOT

    func testOrNotCombinations() {
        let m = message(Self.plain, uid: 5, flags: [.seen])
        XCTAssertTrue(match(.or(.flags(.deleted, set: true), .header("Subject", "report")), m))
        XCTAssertFalse(match(.or(.flags(.deleted, set: true), .header("Subject", "nothing")), m))
        XCTAssertTrue(match(.not(.or(.uids([1...2]), .flags(.draft, set: true))), m))
        XCTAssertFalse(match(.and([.flags(.seen, set: true), .not(.body("bob"))]), m))
        XCTAssertTrue(match(.and([.not(.flags(.seen, set: false)), .or(.body("zzz"), .text("alice"))]), m))
    }

    func testDeepNesting() {
        var q: SearchQuery = .body("numbers")
        for i in 0..<100 { q = i % 2 == 0 ? .not(q) : .and([.all, q]) }
        XCTAssertTrue(match(q, message(Self.plain)), "an even number of NOTs")
    }

    // MARK: cost and caching

    func testCheapKeysShortCircuitBeforeContent() {
        let reads = Reads()
        let m = message(Self.plain, uid: 1, reads: reads)
        XCTAssertFalse(match(.and([.body("numbers"), .text("alice"), .uids([2...9])]), m))
        XCTAssertFalse(match(.and([.header("Subject", "report"), .flags(.seen, set: true)]), m))
        XCTAssertTrue(match(.or(.body("numbers"), .uids([1...1])), m))
        XCTAssertEqual(reads.count, 0, "decided by UID and flags alone")
    }

    func testBytesReadAtMostOncePerMessage() {
        let reads = Reads()
        let m = message(Self.alternative, reads: reads)
        XCTAssertTrue(match(.and([.header("Subject", "newsletter"), .body("köln"), .text("münchen"), .not(.body("absent"))]), m))
        XCTAssertEqual(reads.count, 1)
    }

    func testPreparedSearchAcrossMessages() throws {
        let search = PreparedSearch(.and([.flags(.seen, set: false), .text("ärger")]))
        XCTAssertTrue(search.needsContent)
        let hits = try [message(Self.plain, uid: 1), message(Self.encodedSubject, uid: 2), message(Self.alternative, uid: 3),
                        message(Self.encodedSubject, uid: 4, flags: .seen)].filter { try search.matches($0) }.map(\.uid)
        XCTAssertEqual(hits, [1, 2])
    }

    func testNeedsContent() {
        XCTAssertFalse(SearchEvaluator.needsContent(.all))
        XCTAssertFalse(SearchEvaluator.needsContent(.and([.uids([1...5]), .flags(.seen, set: true), .keyword("x", set: false),
                                                          .internalDate(.since, day: 1), .larger(5), .smaller(9), .modSeq(3)])))
        XCTAssertFalse(SearchEvaluator.needsContent(.or(.body(""), .not(.text("")))))
        XCTAssertTrue(SearchEvaluator.needsContent(.sentDate(.on, day: 1)))
        XCTAssertTrue(SearchEvaluator.needsContent(.not(.header("Subject", ""))))
        XCTAssertTrue(SearchEvaluator.needsContent(.or(.all, .body("x"))))
        XCTAssertTrue(SearchEvaluator.needsContent(.and([.uids([1...1]), .text("x")])))
    }

    func testLargeMixedBody() {
        // 2 MB of quoted-printable text, ASCII and non-ASCII lines mixed, the needle at the end.
        var l = ["Subject: big", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", ""]
        for i in 0..<40_000 { l.append(i % 3 == 0 ? "Gr=C3=BC=C3=9Fe Zeile \(i) =E2=82=AC" : "plain ascii line number \(i) padding") }
        l.append("final NEEDLE=")
        l.append("HERE")
        let m = message(Self.lines(l))
        XCTAssertTrue(match(.body("needlehere"), m))
        XCTAssertTrue(match(.body("GRÜSSE ZEILE 39999"), m))
        XCTAssertFalse(match(.body("absent"), m))
    }

    func testBodyReadErrorPropagates() {
        struct Gone: Error {}
        let m = SearchableMessage(uid: 1, modSeq: 1, flags: [], keywords: [], internalDate: 0, size: 10,
                                  info: MessageParser.parse(Self.plain), body: { throw Gone() })
        XCTAssertThrowsError(try SearchEvaluator.matches(.body("x"), m))
        XCTAssertNoThrow(try SearchEvaluator.matches(.or(.all, .body("x")), m), "not read when not needed")
    }
}
