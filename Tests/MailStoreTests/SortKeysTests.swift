// SortKeys: RFC 5256 §2.1 base subject, §2.2 sent date, the address keys of §3 and RFC 5957,
// i;unicode-casemap (RFC 5051) and the order SORT answers in, ties and REVERSE included.
import XCTest
import MIME
import MailModel
@testable import MailStore

final class SortKeysTests: XCTestCase {
    func testBaseSubject() {
        let cases: [(String, String, Bool)] = [
            ("hello", "hello", false),
            ("Re: hello", "hello", true),
            ("RE: Re: re: hello", "hello", true),
            ("Fwd: hello", "hello", true),
            ("FW: hello", "hello", true),
            ("fwd:hello", "hello", true),
            // subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
            ("Re [2]: hello", "hello", true),
            ("Re  : hello", "hello", true),
            // subj-leader = (*subj-blob subj-refwd) / WSP
            ("[list] Re: hello", "hello", true),
            ("[a][b] Re: x", "x", true),
            // (4) a blob goes only when something is left after it
            ("[list] hello", "hello", false),
            ("[list]", "[list]", false),
            ("[list]  ", "[list]", false),
            // (2) subj-trailer = "(fwd)" / WSP
            ("hello (fwd)", "hello", true),
            ("hello (FWD) (fwd)  ", "hello", true),
            ("hello(fwd)", "hello", true),
            // (6) subj-fwd = "[fwd:" subject "]"
            ("[fwd: hello]", "hello", true),
            ("[Fwd: Re: hello]", "hello", true),
            ("Re: [fwd: hello (fwd)]", "hello", true),
            ("[fwd: hello", "[fwd: hello", false),
            // (1) whitespace runs to one space; encoded words decoded
            ("  hello   world\tagain ", "hello world again", false),
            ("=?utf-8?q?Re=3A_caf=C3=A9?=", "café", true),
            ("Re: =?iso-8859-1?q?caf=E9?=", "café", true),
            ("", "", false),
            ("Re:", "", true),
            ("Reply: hello", "Reply: hello", false),
            ("Re hello", "Re hello", false),
        ]
        for (raw, base, reply) in cases {
            let got = BaseSubject.extract(raw)
            XCTAssertEqual(got.subject, base, "base subject of \(raw.debugDescription)")
            XCTAssertEqual(got.replyOrForward, reply, "reply or forward: \(raw.debugDescription)")
        }
    }

    func testUnicodeCasemap() {
        XCTAssertEqual(UnicodeCasemap.key("abc"), Array("ABC".utf8))
        XCTAssertEqual(UnicodeCasemap.key("café"), UnicodeCasemap.key("CAFÉ"))
        // decomposed and precomposed é compare equal (NFKD)
        XCTAssertEqual(UnicodeCasemap.key("cafe\u{301}"), UnicodeCasemap.key("caf\u{E9}"))
        // titlecase: ASCII letters sort before "[" … "`" (uppercase, not lowercase)
        XCTAssertTrue(UnicodeCasemap.key("a").lexicographicallyPrecedes(UnicodeCasemap.key("_")))
        XCTAssertEqual(SortKeys.subjectKey("Re: Hello"), SortKeys.subjectKey("hello"))
    }

    func message(_ uid: UInt32, subject: String? = nil, date: String? = nil, arrival: Int64 = 0, size: UInt64 = 0,
                 from: [Address] = [], to: [Address] = [], cc: [Address] = []) -> SortableMessage {
        SortableMessage(uid: uid, internalDate: arrival, size: size,
                        envelope: Envelope(date: date, subject: subject, from: from, sender: from, replyTo: from, to: to, cc: cc))
    }

    func testEnvelopeDecodedWithoutTheBody() throws {
        let env = Envelope(date: "Mon, 1 Jan 2024 10:00:00 +0000", subject: "Re: x", from: [Address(name: "A", mailbox: "a", host: "b.test")],
                           messageID: "<1@b.test>")
        let info = MessageInfo(size: 100, headerSize: 42, lines: 3, envelope: env, body: BodyPart())
        let got = try MessageInfo.envelope(encoded: info.encoded())
        XCTAssertEqual(got.headerSize, 42)
        XCTAssertEqual(got.envelope, env)
    }

    func testRanksKeepTheOrderOfTexts() {
        XCTAssertEqual(SortKeys.ranks([.text(Array("b".utf8)), .text(Array("a".utf8)), .text(Array("b".utf8)), .text([])]), [2, 1, 2, 0])
        XCTAssertEqual(SortKeys.ranks([.number(7), .number(-3)]), [7, -3])
    }

    func testSentDateFallsBackToInternalDate() {
        // RFC 5256 §2.2: no or unparsable Date: → the internal date; zones normalised to UTC.
        XCTAssertEqual(message(1, date: nil, arrival: 77).sentDate, 77)
        XCTAssertEqual(message(1, date: "not a date", arrival: 77).sentDate, 77)
        XCTAssertEqual(message(1, date: "Mon, 1 Jan 2024 10:00:00 +0200").sentDate, message(2, date: "Mon, 1 Jan 2024 08:00:00 +0000").sentDate)
    }

    func testSortOrders() {
        let a = Address(name: "Zed", mailbox: "alice", host: "x.test")
        let b = Address(name: nil, mailbox: "bob", host: "x.test")
        let c = Address(name: "=?utf-8?q?=C3=89mile?=", mailbox: "carol", host: "x.test")
        let group = Address(mailbox: "team", host: nil)
        let ms = [
            message(1, subject: "Re: beta", date: "Tue, 2 Jan 2024 10:00:00 +0000", arrival: 30, size: 300, from: [b], to: [a]),
            message(2, subject: "alpha", date: "Mon, 1 Jan 2024 10:00:00 +0000", arrival: 10, size: 100, from: [a], to: [c], cc: [b]),
            message(3, subject: "[list] Beta", date: nil, arrival: 20, size: 100, from: [c], to: [group, b, group]),
            message(4, subject: nil, date: "Mon, 1 Jan 2024 10:00:00 +0000", arrival: 20, size: 200),
        ]
        func sorted(_ c: [SortCriterion]) -> [UInt32] { SortKeys.sort(ms, by: c) }
        XCTAssertEqual(sorted([SortCriterion(.arrival)]), [2, 3, 4, 1])           // 3 and 4 tie: sequence order
        XCTAssertEqual(sorted([SortCriterion(.arrival, reverse: true)]), [1, 3, 4, 2])   // REVERSE leaves the tie ascending
        XCTAssertEqual(sorted([SortCriterion(.size)]), [2, 3, 4, 1])
        XCTAssertEqual(sorted([SortCriterion(.subject)]), [4, 2, 1, 3])           // "" < ALPHA < BETA = BETA
        XCTAssertEqual(sorted([SortCriterion(.subject), SortCriterion(.arrival, reverse: true)]), [4, 2, 1, 3])
        XCTAssertEqual(sorted([SortCriterion(.subject), SortCriterion(.size, reverse: true)]), [4, 2, 1, 3])
        XCTAssertEqual(sorted([SortCriterion(.subject, reverse: true), SortCriterion(.size)]), [3, 1, 2, 4])
        // date: 3 has no Date: and uses arrival 20 (1970), before 2024
        XCTAssertEqual(sorted([SortCriterion(.date)]), [3, 2, 4, 1])
        // FROM: addr-mailbox; none sorts first
        XCTAssertEqual(sorted([SortCriterion(.from)]), [4, 2, 1, 3])
        // TO: 3's list opens with a group: its marker's addr-mailbox, the group name "team"
        XCTAssertEqual(sorted([SortCriterion(.to)]), [4, 1, 2, 3])
        XCTAssertEqual(sorted([SortCriterion(.cc)]), [1, 3, 4, 2])
        // DISPLAYFROM: the decoded display name, else the addr-spec: "" < BOB@X.TEST < E\u{301}MILE
        // (NFKD of "Émile" titlecased) < ZED
        XCTAssertEqual(sorted([SortCriterion(.displayFrom)]), [4, 1, 3, 2])
        XCTAssertEqual(sorted([SortCriterion(.displayTo)]), [4, 2, 3, 1])   // "", E…MILE, TEAM, ZED
    }
}
