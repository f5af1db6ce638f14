// IMAPWriter and IMAPDate: quoting and literal choice, mailbox names, sets, whole responses.
import XCTest
@testable import IMAPProtocol

/// A message written with "\n" line ends, as CRLF bytes (what the store keeps).
func crlfMessage(_ s: String) -> [UInt8] {
    Array(s.replacingOccurrences(of: "\n", with: "\r\n").utf8)
}

/// What `build` writes, as text.
func written(utf8: Bool = false, _ build: (inout IMAPWriter) -> Void) -> String {
    var w = IMAPWriter(utf8: utf8)
    build(&w)
    return String(decoding: w.bytes, as: UTF8.self)
}

final class WriterTests: XCTestCase {
    // MARK: string: quoted or literal (RFC 9051 §9)

    func testShortASCIIIsQuoted() {
        XCTAssertEqual(written { $0.string("hello world") }, #""hello world""#)
        XCTAssertEqual(written { $0.string("") }, #""""#)
    }

    func testQuotedSpecialsAreEscaped() {
        XCTAssertEqual(written { $0.string(#"say "hi" \ bye"#) }, #""say \"hi\" \\ bye""#)
    }

    func testManyQuotedSpecialsForceLiteral() {
        // Dovecot's rule: from the fifth quoted-special on, a literal is the shorter form.
        XCTAssertEqual(written { $0.string(#"a"b"c"d"e"#) }, #""a\"b\"c\"d\"e""#)
        XCTAssertEqual(written { $0.string(#""a"b"c"""#) }, "{8}\r\n\"a\"b\"c\"\"")
    }

    func testCRLFForcesLiteral() {
        XCTAssertEqual(written { $0.string("a\r\nb") }, "{4}\r\na\r\nb")
        XCTAssertEqual(written { $0.string("a\nb") }, "{3}\r\na\nb")
        XCTAssertEqual(written { $0.string("a\rb") }, "{3}\r\na\rb")
    }

    func testNULForcesLiteral() {
        // RFC 9051 §9: a literal's octets are CHAR8 (no NUL): the NUL goes out as 0x80, as Dovecot sends it.
        var w = IMAPWriter()
        w.string(bytes: [0x61, 0x00, 0x62])
        XCTAssertEqual(w.bytes, Array("{3}\r\na".utf8) + [0x80, 0x62])
    }

    func testLengthLimitOfQuoted() {
        let atLimit = String(repeating: "x", count: IMAPWriter.maxQuoted)
        XCTAssertEqual(written { $0.string(atLimit) }, "\"" + atLimit + "\"")
        let over = atLimit + "x"
        XCTAssertEqual(written { $0.string(over) }, "{\(IMAPWriter.maxQuoted + 1)}\r\n" + over)
    }

    func testEightBitIsLiteralWithoutUTF8() {
        XCTAssertEqual(written { $0.string("café") }, "{5}\r\ncafé")
    }

    func testEightBitIsQuotedWithUTF8() {
        XCTAssertEqual(written(utf8: true) { $0.string("café \"x\"") }, #""café \"x\"""#)
    }

    func testInvalidUTF8IsLiteralEvenWithUTF8() {
        let latin1: [UInt8] = [0x63, 0x61, 0x66, 0xE9]   // "café" in ISO-8859-1
        var w = IMAPWriter(utf8: true)
        w.string(bytes: latin1)
        XCTAssertEqual(w.bytes, Array("{4}\r\n".utf8) + latin1)
    }

    func testNString() {
        XCTAssertEqual(written { $0.nstring(nil) }, "NIL")
        XCTAssertEqual(written { $0.nstring("NIL") }, #""NIL""#)
    }

    // MARK: astring, atom, mailbox

    func testAStringChoosesAtomWhenValid() {
        XCTAssertEqual(written { $0.astring("Sent") }, "Sent")
        XCTAssertEqual(written { $0.astring("a]b") }, "a]b")          // resp-specials are ASTRING-CHARs
        XCTAssertEqual(written { $0.astring("My Folder") }, #""My Folder""#)
        XCTAssertEqual(written { $0.astring("50%") }, #""50%""#)       // list-wildcards are not
        XCTAssertEqual(written { $0.astring("a(b") }, #""a(b""#)
        XCTAssertEqual(written { $0.astring("") }, #""""#)
        XCTAssertEqual(written { $0.astring("nil") }, #""nil""#)      // never the atom NIL
    }

    func testAtomClassification() {
        XCTAssertTrue(IMAPWriter.isAtom("$Junk"))
        XCTAssertTrue(IMAPWriter.isAtom("UIDNEXT"))
        XCTAssertFalse(IMAPWriter.isAtom(""))
        XCTAssertFalse(IMAPWriter.isAtom("a b"))
        XCTAssertFalse(IMAPWriter.isAtom("a]"))
        XCTAssertFalse(IMAPWriter.isAtom("\\Seen"))                      // "\" is a quoted-special
        XCTAssertFalse(IMAPWriter.isAtom("ü"))
        XCTAssertTrue(IMAPWriter.isAstringAtom("a]"))
        XCTAssertEqual(written { $0.atom("FLAGS") }, "FLAGS")
    }

    func testMailboxINBOXIsAlwaysTheAtom() {
        XCTAssertEqual(written { $0.mailbox("INBOX") }, "INBOX")
        XCTAssertEqual(written { $0.mailbox("inbox") }, "INBOX")
        XCTAssertEqual(written(utf8: true) { $0.mailbox("Inbox") }, "INBOX")
        XCTAssertEqual(written { $0.mailbox("INBOX/Sub") }, "INBOX/Sub")
    }

    func testMailboxModifiedUTF7WithoutUTF8() {
        XCTAssertEqual(written { $0.mailbox("Entwürfe") }, "Entw&APw-rfe")
        XCTAssertEqual(written { $0.mailbox("A&B") }, "A&-B")
        XCTAssertEqual(written { $0.mailbox("Gesendete Objekte") }, #""Gesendete Objekte""#)
        XCTAssertEqual(written { $0.mailbox("~peter/mail/台北/日本語") }, "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    }

    func testMailboxUTF8WhenEnabled() {
        XCTAssertEqual(written(utf8: true) { $0.mailbox("Entwürfe") }, #""Entwürfe""#)
        XCTAssertEqual(written(utf8: true) { $0.mailbox("A&B") }, "A&B")
        XCTAssertEqual(written(utf8: true) { $0.mailbox("Sent") }, "Sent")
    }

    // MARK: literals

    func testLiteralForms() {
        XCTAssertEqual(written { $0.literal(Array("abc".utf8)) }, "{3}\r\nabc")
        XCTAssertEqual(written { $0.literal([]) }, "{0}\r\n")
        // Streamed in chunks after literalHeader: the count stays, NUL becomes 0x80 (test_imap_dovecot nul_in_part).
        var w = IMAPWriter()
        w.literalHeader(count: 4, binary: false)
        w.literalContent([0x00, 0x41])
        w.literalContent([0x42, 0x00])
        XCTAssertEqual(w.bytes, Array("{4}\r\n".utf8) + [0x80, 0x41, 0x42, 0x80])
        var w8 = IMAPWriter()
        w8.literal8([0x00])
        XCTAssertEqual(w8.bytes, Array("~{1}\r\n".utf8) + [0x00], "literal8 keeps NUL")
        XCTAssertEqual(written { $0.literal8([0, 1]) }, "~{2}\r\n\u{0}\u{1}")
        XCTAssertEqual(written { $0.literalHeader(count: 12345, binary: false) }, "{12345}\r\n")
        XCTAssertEqual(written { $0.literalHeader(count: 7, binary: true) }, "~{7}\r\n")
    }

    // MARK: flags, numbers, sets

    func testFlagsList() {
        XCTAssertEqual(written { $0.flags(["\\Seen", "$Junk"]) }, "(\\Seen $Junk)")
        XCTAssertEqual(written { $0.flags([]) }, "()")
    }

    func testNumbers() {
        XCTAssertEqual(written { $0.number(0) }, "0")
        XCTAssertEqual(written { $0.number(UInt64.max) }, "18446744073709551615")
        XCTAssertEqual(written { $0.number(UInt32(4_294_967_295)) }, "4294967295")
    }

    func testSequenceSetCompaction() {
        XCTAssertEqual(written { $0.sequenceSet([1...3, 5...5]) }, "1:3,5")
        XCTAssertEqual(written { $0.sequenceSet([1...2, 3...4, 6...6, 7...9]) }, "1:4,6:9")
        XCTAssertEqual(written { $0.sequenceSet([7...7]) }, "7")
        XCTAssertEqual(written { $0.sequenceSet([10...12, 1...2]) }, "10:12,1:2")   // order kept
        XCTAssertEqual(written { $0.sequenceSet([4...SequenceSet.star]) }, "4:*")
        XCTAssertEqual(written { $0.sequenceSet([]) }, "")
    }

    func testUIDSetCompaction() {
        XCTAssertEqual(written { $0.uidSet([1, 2, 3, 5, 9, 10]) }, "1:3,5,9:10")
        XCTAssertEqual(written { $0.uidSet([42]) }, "42")
        XCTAssertEqual(written { $0.uidSet([4294967294, 4294967295]) }, "4294967294:*")
        // COPYUID destination order is the source order: an unsorted list is not reordered.
        XCTAssertEqual(written { $0.uidSet([8, 3, 4]) }, "8,3:4")
        let many = Array(UInt32(1)...UInt32(100_000))
        XCTAssertEqual(written { $0.uidSet(many) }, "1:100000")
    }

    // MARK: whole responses

    func testTaggedResponses() {
        XCTAssertEqual(written { $0.tagged("a1", .ok, code: nil, "LOGIN completed") }, "a1 OK LOGIN completed\r\n")
        XCTAssertEqual(written { $0.tagged("a2", .ok, code: "READ-WRITE", "SELECT completed") },
                       "a2 OK [READ-WRITE] SELECT completed\r\n")
        XCTAssertEqual(written { $0.tagged("a3", .no, code: "TRYCREATE", "No such mailbox") },
                       "a3 NO [TRYCREATE] No such mailbox\r\n")
        XCTAssertEqual(written { $0.tagged("a4", .bad, code: nil, "Error in IMAP command") },
                       "a4 BAD Error in IMAP command\r\n")
        XCTAssertEqual(written { $0.tagged("a5", .ok, code: "CLOSED", "") }, "a5 OK [CLOSED]\r\n")
    }

    func testResponseTextStaysOnOneLine() {
        XCTAssertEqual(written { $0.tagged("t", .no, code: nil, "bad\r\nthing") }, "t NO bad  thing\r\n")
        XCTAssertEqual(written { $0.continuation("more\nplease") }, "+ more please\r\n")
    }

    func testUntaggedAndContinuation() {
        XCTAssertEqual(written { $0.untagged("3 EXISTS") }, "* 3 EXISTS\r\n")
        XCTAssertEqual(written { $0.untagged(.ok, code: "UIDVALIDITY 3857529045", "UIDs valid") },
                       "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
        XCTAssertEqual(written { $0.untagged(.bye, code: nil, "Logging out") }, "* BYE Logging out\r\n")
        XCTAssertEqual(written { $0.continuation("") }, "+ \r\n")
        XCTAssertEqual(written { $0.continuation("idling") }, "+ idling\r\n")
    }

    func testAppendersCompose() {
        let s = written { w in
            w.raw("* LIST (\\HasNoChildren) ")
            w.string("/")
            w.sp()
            w.mailbox("Entwürfe")
            w.crlf()
        }
        XCTAssertEqual(s, "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\n")
    }

    // MARK: IMAPDate

    func testDateFormatKnownInstants() {
        XCTAssertEqual(IMAPDate.format(0), "01-Jan-1970 00:00:00 +0000")
        XCTAssertEqual(IMAPDate.format(1_796_526_245), "06-Dec-2026 03:04:05 +0000")
        XCTAssertEqual(IMAPDate.format(951_782_400), "29-Feb-2000 00:00:00 +0000")
        XCTAssertEqual(IMAPDate.format(1_709_251_199), "29-Feb-2024 23:59:59 +0000")
        XCTAssertEqual(IMAPDate.format(-1), "31-Dec-1969 23:59:59 +0000")
        XCTAssertEqual(IMAPDate.format(4_102_444_800), "01-Jan-2100 00:00:00 +0000")
    }

    func testDateFormatWithZone() {
        XCTAssertEqual(IMAPDate.format(1_796_526_245, offsetMinutes: -300), "05-Dec-2026 22:04:05 -0500")
        XCTAssertEqual(IMAPDate.format(1_796_526_245, offsetMinutes: 330), "06-Dec-2026 08:34:05 +0530")
    }

    func testDateEveryDayOfFourCenturiesRoundTrips() {
        // civil(fromDays:) against a plain day-by-day walk over 1970–2370.
        var y = 1970, m = 1, d = 1
        let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for day in Int64(0)..<Int64(146_097) {
            let got = IMAPDate.civil(fromDays: day)
            XCTAssert(got == (y, m, d), "day \(day): \(got) != \(y)-\(m)-\(d)")
            if got != (y, m, d) { return }
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
            let len = m == 2 && leap ? 29 : monthDays[m - 1]
            d += 1
            if d > len { d = 1; m += 1 }
            if m > 12 { m = 1; y += 1 }
        }
    }
}
