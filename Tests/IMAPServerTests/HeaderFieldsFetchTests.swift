// HEADER.FIELDS[.NOT] filtered in the store (DetailsWant.fields, HeaderFieldFilter) answers byte
// for byte what imapd's SectionLocator answers from the whole header (RFC 9051 §6.4.5), over the
// real wire and store, for bodies in rows and in files, first read and from the header cache;
// and RFC822.SIZE from the view equals the store's size. Tricky headers: folded lines, duplicate
// and differently cased fields, bare LF, no blank line, lines that are no field, WSP before ":".
import XCTest
import IMAPProtocol
import MailIPC
import MailModel
import MailStore
import MailWorker
import MailTesting
@testable import IMAPServer

final class HeaderFieldsFetchTests: XCTestCase {
    static let messages = [
        "From: a@x.org\r\nSubject: one\r\n two\r\nsubject: dup\r\nX-Other: y\r\nTO: b@y.org\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n",
        "From: a@x.org\nSubject: bare LF\n folded\nDate: x\n\nbody\n",
        "From: a@x.org\r\nSubject: no body and no blank line",
        "X-Only: 1\r\nX-Also: 2\r\n\r\nno wanted field\r\n",
        "From: a@x.org\r\nnot a field line\r\nDate: d\r\n\r\nb\r\n",
        "Subject : spaced before the colon\r\nFROM:x\r\n\r\nb\r\n",
        "\r\nempty header\r\n",
    ]
    static let selections: [([String], Bool)] = [
        (["FROM", "TO", "SUBJECT", "DATE"], false), (["subject"], false), (["From", "from", "FROM"], false), (["missing"], false),
        (["subject"], true), (["FROM", "date"], true), (["x-only", "x-also"], true),
    ]

    func check(inlineMax: Int) async throws {
        let instance = try InProcessStore(inlineMax: inlineMax)
        try instance.store.addDomain("example.org")
        try instance.store.addUser("alice@example.org", password: "secret")
        let rpc = try instance.nioClient(.imapd)
        let s = RPCIMAPServices(rpc: rpc, events: EventRouter(), memo: nil)
        let outcome = await s.authenticate(user: "alice@example.org", password: "secret", client: "192.0.2.1")
        XCTAssertEqual(outcome, .success(canonical: "alice@example.org"))
        for m in Self.messages {
            _ = try await s.append(to: "INBOX", flags: [], keywords: [], internalDate: nil, body: Array(m.utf8))
        }
        let view = try await s.select("INBOX")
        let uids = view.entries.map(\.uid)
        XCTAssertEqual(uids.count, Self.messages.count)
        // RFC822.SIZE from the view is the store's size
        let sizes = try await s.details(mailbox: view.summary.id, uids: uids).map { UInt32($0.size) }
        XCTAssertEqual(view.entries.map(\.size), sizes)
        XCTAssertEqual(sizes, Self.messages.map { UInt32($0.utf8.count) })

        let headers = try await s.details(mailbox: view.summary.id, uids: uids, info: false, withPrefix: true, whole: false,
                                          prefixLimit: FetchPlan.maxHeaderPrefix, fields: nil)
        XCTAssertEqual(headers.count, uids.count)
        for (names, not) in Self.selections {
            let selection = try XCTUnwrap(HeaderFieldSelection(names, not: not))
            for round in 0..<2 {   // read, then from the cache
                let filtered = try await s.details(mailbox: view.summary.id, uids: uids, info: false, withPrefix: true, whole: false,
                                                   prefixLimit: FetchPlan.maxHeaderPrefix, fields: selection)
                XCTAssertEqual(filtered.map(\.0.uid), uids)
                for ((d, got), (_, header)) in zip(filtered, headers) {
                    let header = try XCTUnwrap(header, "header of UID \(d.uid)")
                    let want = SectionLocator.filterHeader(header, names: names, not: not)
                    // an empty answer comes as no prefix: FETCH then reads the header by range
                    XCTAssertEqual(got ?? [], want, "UID \(d.uid) \(names) not \(not) round \(round) inline \(inlineMax)")
                }
            }
        }
        // The RFC 9051 §6.4.5 answer itself, for the first message: fields in message order, each
        // line CRLF, folds kept, every duplicate, any case, then the blank line.
        let first = try await s.details(mailbox: view.summary.id, uids: [uids[0]], info: false, withPrefix: true, whole: false,
                                        prefixLimit: FetchPlan.maxHeaderPrefix, fields: HeaderFieldSelection(["subject", "to"], not: false))
        XCTAssertEqual(first.first?.1.map { String(decoding: $0, as: UTF8.self) },
                       "Subject: one\r\n two\r\nsubject: dup\r\nTO: b@y.org\r\n\r\n")
        // no blank line in the message: none in the answer
        let third = try await s.details(mailbox: view.summary.id, uids: [uids[2]], info: false, withPrefix: true, whole: false,
                                        prefixLimit: FetchPlan.maxHeaderPrefix, fields: HeaderFieldSelection(["subject"], not: false))
        XCTAssertEqual(third.first?.1.map { String(decoding: $0, as: UTF8.self) }, "Subject: no body and no blank line\r\n")
        rpc.close()
    }

    func testStoreFilterEqualsSectionLocatorForBodiesInRows() async throws { try await check(inlineMax: 64 * 1024) }
    func testStoreFilterEqualsSectionLocatorForBodiesInFiles() async throws { try await check(inlineMax: 0) }

    func testSelectionsTheWireCannotCarryFallBack() {
        XCTAssertNil(HeaderFieldSelection([""], not: false))
        XCTAssertNil(HeaderFieldSelection([], not: false))
        XCTAssertEqual(HeaderFieldSelection(["From", "FROM", "to"], not: true), HeaderFieldSelection(names: ["from", "to"], not: true))
    }

    func testPlanFiltersInTheStoreOnlyForOneTopLevelFieldsItem() {
        let fields = FetchAttribute.bodySection(Section(part: [], text: .headerFields(["From"])), partial: nil, peek: true)
        XCTAssertEqual(FetchPlan([.uid, .flags, fields]).fields, HeaderFieldSelection(names: ["from"], not: false))
        XCTAssertNil(FetchPlan([fields, .rfc822Header]).fields, "two header items: the whole header comes")
        XCTAssertNil(FetchPlan([fields, .envelope]).fields, "not header-only")
        XCTAssertNil(FetchPlan([FetchAttribute.bodySection(Section(part: [1], text: .headerFields(["From"])), partial: nil, peek: true)]).fields)
        XCTAssertFalse(FetchPlan([.uid, .rfc822Size], sizesInView: true).needsDetails)
        XCTAssertTrue(FetchPlan([.uid, .rfc822Size]).needsDetails)
    }

    func testSizesKnownLooksOnlyAtTheFetchedMessages() {
        let entries = [ViewEntry(uid: 1, modSeq: 1, flags: [], size: 10), ViewEntry(uid: 2, modSeq: 1, flags: []),
                       ViewEntry(uid: 3, modSeq: 1, flags: [], size: 30)]
        XCTAssertTrue(IMAPSession.sizesKnown([1, 3], in: entries))
        XCTAssertFalse(IMAPSession.sizesKnown([1, 2, 3], in: entries))
        XCTAssertTrue(IMAPSession.sizesKnown([4], in: entries), "gone meanwhile: nothing to answer")
    }
}
