import XCTest
@testable import IMAPProtocol

final class ParserTests: XCTestCase {
    private func options(utf8: Bool = false) -> IMAPParserOptions { IMAPParserOptions(utf8Accept: utf8, limits: IMAPLimits()) }

    /// The kind parsed from `line` + CRLF, failing the test on an error.
    private func kind(_ line: String, utf8: Bool = false, file: StaticString = #filePath, lineNo: UInt = #line) -> IMAPCommand.Kind? {
        switch IMAPParser.parse(Array((line + "\r\n").utf8), options: options(utf8: utf8)) {
        case .success(let c): return c.kind
        case .failure(let e): XCTFail("\(line): \(e)", file: file, line: lineNo); return nil
        }
    }

    private func error(_ line: String, utf8: Bool = false, file: StaticString = #filePath, lineNo: UInt = #line) -> IMAPParseError? {
        error(Array((line + "\r\n").utf8), utf8: utf8, file: file, lineNo: lineNo)
    }

    private func error(_ unit: [UInt8], utf8: Bool = false, limits: IMAPLimits = IMAPLimits(), file: StaticString = #filePath, lineNo: UInt = #line) -> IMAPParseError? {
        switch IMAPParser.parse(unit, options: IMAPParserOptions(utf8Accept: utf8, limits: limits)) {
        case .success(let c): XCTFail("parsed: \(c)", file: file, line: lineNo); return nil
        case .failure(let e): return e
        }
    }

    private func search(_ line: String) -> SearchKey? {
        guard case .search(let s, _)? = kind("s SEARCH " + line) else { return nil }
        return s.key
    }

    private func fetch(_ line: String) -> FetchCommand? {
        guard case .fetch(let f, _)? = kind(line) else { XCTFail(line); return nil }
        return f
    }

    private let day = 86_400

    // MARK: any state, not authenticated

    func testSimpleCommandsCaseInsensitive() {
        XCTAssertEqual(kind("a1 CAPABILITY"), .capability)
        XCTAssertEqual(kind("a2 noop"), .noop)
        XCTAssertEqual(kind("a3 LogOut"), .logout)
        XCTAssertEqual(kind("a4 STARTTLS"), .starttls)
        XCTAssertEqual(kind("a5 NAMESPACE"), .namespace)
        XCTAssertEqual(kind("a6 IDLE"), .idle)
        XCTAssertEqual(kind("a7 check"), .check)
        XCTAssertEqual(kind("a8 CLOSE"), .close)
        XCTAssertEqual(kind("a9 UNSELECT"), .unselect)
        XCTAssertEqual(kind("a10 EXPUNGE"), .expunge)
    }

    func testTagIsReturnedAndBareLFAccepted() {
        XCTAssertEqual(try IMAPParser.parse(Array("x.y]z NOOP\n".utf8), options: options()).get(), IMAPCommand(tag: "x.y]z", kind: .noop))
    }

    func testID() {
        XCTAssertEqual(kind("a ID NIL"), .id(nil))
        XCTAssertEqual(kind("3 ID (\"name\" \"Thunderbird\" \"version\" \"115.6.0\")"),
                       .id([IDField(key: "name", value: "Thunderbird"), IDField(key: "version", value: "115.6.0")]))
        XCTAssertEqual(kind("3 ID (\"os\" NIL)"), .id([IDField(key: "os", value: nil)]))
        let tooMany = (0..<31).map { "\"k\($0)\" \"v\"" }.joined(separator: " ")
        XCTAssertEqual(error("3 ID (\(tooMany))")?.code, "LIMIT")
    }

    func testLogin() {
        XCTAssertEqual(kind("A1 LOGIN bob@example.org \"s3cr\\\"t\\\\\""), .login(user: "bob@example.org", password: "s3cr\"t\\"))
        XCTAssertEqual(kind("A1 LOGIN {3}\r\nbob {6+}\r\nsecret"), .login(user: "bob", password: "secret"))
        XCTAssertEqual(error("A1 LOGIN bob")?.tag, "A1")
        XCTAssertNotNil(error("A1 LOGIN bob  pw"))           // one SP only
        XCTAssertNotNil(error("A1 LOGIN \"a\\b\" pw"))       // only \\ and \" escapes
    }

    func testAuthenticate() {
        XCTAssertEqual(kind("x AUTHENTICATE PLAIN"), .authenticate(mechanism: "PLAIN", initial: nil))
        XCTAssertEqual(kind("x authenticate plain AGJvYgBzZWNyZXQ="), .authenticate(mechanism: "PLAIN", initial: "AGJvYgBzZWNyZXQ="))
        XCTAssertEqual(kind("x AUTHENTICATE EXTERNAL ="), .authenticate(mechanism: "EXTERNAL", initial: ""))
        XCTAssertNotNil(error("x AUTHENTICATE PLAIN AG=v"))
        XCTAssertNotNil(error("x AUTHENTICATE PLAIN abc"))
    }

    // MARK: authenticated

    func testEnable() {
        XCTAssertEqual(kind("e ENABLE CONDSTORE qresync UTF8=ACCEPT"), .enable(["CONDSTORE", "QRESYNC", "UTF8=ACCEPT"]))
        XCTAssertNotNil(error("e ENABLE"))
    }

    func testSelectExamineCondstoreQresync() {
        XCTAssertEqual(kind("7 select \"INBOX\" (CONDSTORE)"), .select(mailbox: "INBOX", SelectParameters(condstore: true)))
        XCTAssertEqual(kind("A7 SELECT inbox"), .select(mailbox: "INBOX", SelectParameters()))
        let q = SelectParameters.QResync(uidValidity: 67890007, modSeq: 20050715194045000,
                                         knownUIDs: .ranges([41...41, 43...211, 214...541]))
        XCTAssertEqual(kind("a SELECT \"INBOX\" (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
                       .select(mailbox: "INBOX", SelectParameters(qresync: q)))
        let full = SelectParameters.QResync(uidValidity: 67890007, modSeq: 90060115194045000, knownUIDs: .ranges([41...211, 214...541]),
                                            seqMatch: .init(sequences: .ranges([1...3, 5...8]), uids: .ranges([41...41, 43...44, 46...211])))
        XCTAssertEqual(kind("B EXAMINE INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:3,5:8 41,43:44,46:211)))"),
                       .examine(mailbox: "INBOX", SelectParameters(qresync: full)))
        XCTAssertEqual(kind("B SELECT INBOX (QRESYNC (1 2))"), .select(mailbox: "INBOX", SelectParameters(qresync: .init(uidValidity: 1, modSeq: 2))))
        XCTAssertNotNil(error("B SELECT INBOX (FOO)"))
        XCTAssertNotNil(error("B SELECT INBOX ()"))
        XCTAssertNotNil(error("B SELECT INBOX (QRESYNC (0 2))"))
        XCTAssertNotNil(error("B SELECT INBOX (QRESYNC (1 2(1 2)))"))
        XCTAssertNotNil(error("B SELECT INBOX (QRESYNC (1 2 1:5 ))"))
        XCTAssertNotNil(error("B SELECT INBOX (QRESYNC (1 2 1:5 (1 2))"))
        XCTAssertEqual(kind("B SELECT INBOX (QRESYNC (1 2 (1 2)) CONDSTORE)"), .select(mailbox: "INBOX", SelectParameters(
            condstore: true, qresync: .init(uidValidity: 1, modSeq: 2, seqMatch: .init(sequences: .ranges([1...1]), uids: .ranges([2...2]))))))
    }

    func testCreateWithSpecialUse() {
        XCTAssertEqual(kind("m1 CREATE \"Entw&APw-rfe\" (USE (\\drafts))"), .create(mailbox: "Entwürfe", specialUse: ["\\Drafts"]))
        XCTAssertEqual(kind("m1 CREATE Archive"), .create(mailbox: "Archive", specialUse: []))
        XCTAssertEqual(kind("m1 CREATE X (USE (\\Sent \\Junk \\Custom))"), .create(mailbox: "X", specialUse: ["\\Sent", "\\Junk", "\\Custom"]))
        XCTAssertNotNil(error("m1 CREATE X (COLOR red)"))
    }

    func testDeleteRenameSubscribe() {
        XCTAssertEqual(kind("d DELETE \"Archive/old\""), .delete(mailbox: "Archive/old"))
        XCTAssertEqual(kind("r RENAME a {1+}\r\nb"), .rename(from: "a", to: "b"))
        XCTAssertEqual(kind("s SUBSCRIBE Inbox"), .subscribe(mailbox: "INBOX"))
        XCTAssertEqual(kind("u UNSUBSCRIBE \"Sent Messages\""), .unsubscribe(mailbox: "Sent Messages"))
    }

    func testListBasicAndExtended() {
        XCTAssertEqual(kind("A3 LIST \"\" \"\""), .list(ListCommand(reference: "", patterns: [""])))
        XCTAssertEqual(kind("A4 LIST \"\" *"), .list(ListCommand(reference: "", patterns: ["*"])))
        XCTAssertEqual(kind("A4 LIST ~/Mail/ %]"), .list(ListCommand(reference: "~/Mail/", patterns: ["%]"])))
        XCTAssertEqual(kind("6 list (subscribed) \"\" \"*\" return (special-use)"),
                       .list(ListCommand(reference: "", patterns: ["*"], selection: [.subscribed], returns: [.specialUse])))
        XCTAssertEqual(kind("m6 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" \"Archive/%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))"),
                       .list(ListCommand(reference: "", patterns: ["INBOX", "Archive/%"], selection: [.subscribed, .recursiveMatch],
                                         returns: [.children, .status], statusItems: [.messages, .unseen])))
        XCTAssertEqual(kind("l LIST () \"\" % RETURN ()"), .list(ListCommand(reference: "", patterns: ["%"])))
        XCTAssertNotNil(error("l LIST (RECURSIVEMATCH) \"\" %"))
        XCTAssertNotNil(error("l LIST (BOGUS) \"\" %"))
        XCTAssertNotNil(error("l LIST \"\" % RETURN (BOGUS)"))
    }

    func testLsub() {
        XCTAssertEqual(kind("A5 LSUB \"\" \"*\""), .lsub(reference: "", pattern: "*"))
        XCTAssertEqual(kind("A5 LSUB \"#news.\" \"comp.mail.%\""), .lsub(reference: "#news.", pattern: "comp.mail.%"))
    }

    func testStatus() {
        XCTAssertEqual(kind("A6 STATUS \"Sent Messages\" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"),
                       .status(mailbox: "Sent Messages", items: [.messages, .uidNext, .uidValidity, .unseen, .highestModSeq]))
        XCTAssertEqual(kind("s status inbox (appendlimit size deleted recent)"),
                       .status(mailbox: "INBOX", items: [.appendLimit, .size, .deleted, .recent]))
        XCTAssertNotNil(error("s STATUS INBOX ()"))
        XCTAssertNotNil(error("s STATUS INBOX (BOGUS)"))
    }

    func testAppend() {
        let msg = "From: a@b\r\n\r\nhi\r\n"
        XCTAssertEqual(kind("A003 APPEND saved-messages (\\Seen) {\(msg.utf8.count)}\r\n\(msg)"),
                       .append(mailbox: "saved-messages", messages: [AppendMessage(flags: [.seen], data: Array(msg.utf8))]))
        // RFC 3501 §6.3.11's example date: 7-Feb-1994 21:52:25 -0800 = 1994-02-08 05:52:25 UTC.
        XCTAssertEqual(kind("A APPEND Drafts (\\Draft $MDNSent) \" 7-Feb-1994 21:52:25 -0800\" {2+}\r\nhi"),
                       .append(mailbox: "Drafts", messages: [AppendMessage(flags: [.draft, .keyword("$MDNSent")], internalDate: 760_686_745, data: Array("hi".utf8))]))
        XCTAssertEqual(kind("A APPEND X \"07-Feb-1994 21:52:25 +0000\" {1}\r\nx"),
                       .append(mailbox: "X", messages: [AppendMessage(internalDate: 760_657_945, data: [0x78])]))
    }

    func testMultiappendAndBinary() {
        XCTAssertEqual(kind("A0 APPEND \"Sent\" (\\Seen) {2+}\r\nab {3+}\r\ncde () ~{3}\r\nf\0g"),
                       .append(mailbox: "Sent", messages: [AppendMessage(flags: [.seen], data: Array("ab".utf8)),
                                                          AppendMessage(data: Array("cde".utf8)),
                                                          AppendMessage(data: [0x66, 0, 0x67], binary: true)]))
        XCTAssertNotNil(error("A0 APPEND X {3}\r\na\0b"))     // NUL only in literal8
        XCTAssertNotNil(error("A0 APPEND X"))
        XCTAssertNotNil(error("A0 APPEND X (\\Seen)"))
        XCTAssertNotNil(error("A0 APPEND X {5}\r\nab"))       // truncated literal
    }

    // MARK: selected

    func testSequenceSets() {
        guard case .copy(let set, let m, uid: false)? = kind("c COPY 1,3:2,5:*,* Trash") else { return XCTFail() }
        XCTAssertEqual(set, .ranges([1...1, 2...3, 5...SequenceSet.star, SequenceSet.star...SequenceSet.star]))
        XCTAssertEqual(m, "Trash")
        XCTAssertEqual(kind("c UID COPY $ Archive"), .copy(.saved, mailbox: "Archive", uid: true))
        XCTAssertEqual(kind("c UID MOVE 4801:4802 \"Trash\""), .move(.ranges([4801...4802]), mailbox: "Trash", uid: true))
        XCTAssertEqual(kind("c MOVE 4 \"Junk\""), .move(.ranges([4...4]), mailbox: "Junk", uid: false))
        XCTAssertNotNil(error("c COPY 0 X"))
        XCTAssertNotNil(error("c COPY 1: X"))
        XCTAssertNotNil(error("c COPY 1,,2 X"))
        XCTAssertNotNil(error("c COPY 4294967296 X"))
        XCTAssertNotNil(error("c COPY 01 X"))
    }

    func testUIDExpunge() {
        XCTAssertEqual(kind("8 UID EXPUNGE 7"), .uidExpunge(.ranges([7...7])))
        XCTAssertNotNil(error("8 UID EXPUNGE"))
        XCTAssertNotNil(error("8 UID NOOP"))
    }

    func testRealClientFetches() {
        XCTAssertEqual(kind("8 UID fetch 1:* (FLAGS)"), .fetch(FetchCommand(sequences: .ranges([1...SequenceSet.star]), attributes: [.flags]), uid: true))
        XCTAssertEqual(kind("6 UID FETCH 1:100 (UID FLAGS)"), .fetch(FetchCommand(sequences: .ranges([1...100]), attributes: [.uid, .flags]), uid: true))
        let ios = fetch("A8 UID FETCH 1:5 (UID FLAGS BODY.PEEK[HEADER.FIELDS (date subject from to cc message-id in-reply-to references)])")
        XCTAssertEqual(ios?.attributes, [.uid, .flags, .bodySection(Section(text: .headerFields(
            ["date", "subject", "from", "to", "cc", "message-id", "in-reply-to", "references"])), partial: nil, peek: true)])
        XCTAssertEqual(fetch("12 UID fetch 4803 (UID RFC822.SIZE BODY.PEEK[])")?.attributes,
                       [.uid, .rfc822Size, .bodySection(Section(), partial: nil, peek: true)])
    }

    func testFetchMacros() {
        XCTAssertEqual(fetch("f FETCH 1 ALL")?.attributes, [.flags, .internalDate, .rfc822Size, .envelope])
        XCTAssertEqual(fetch("f FETCH 1 fast")?.attributes, [.flags, .internalDate, .rfc822Size])
        XCTAssertEqual(fetch("f FETCH 1 FULL")?.attributes, [.flags, .internalDate, .rfc822Size, .envelope, .body])
        XCTAssertNotNil(error("f FETCH 1 (ALL)"))
    }

    func testFetchAttributes() {
        XCTAssertEqual(fetch("f FETCH 4 (RFC822 RFC822.HEADER RFC822.TEXT ENVELOPE INTERNALDATE BODYSTRUCTURE BODY MODSEQ)")?.attributes,
                       [.rfc822, .rfc822Header, .rfc822Text, .envelope, .internalDate, .bodyStructure, .body, .modSeq])
        XCTAssertEqual(fetch("f FETCH 5 (BODY.PEEK[1.2]<0.2048> BODY[1.MIME] BODY[TEXT] BODY[2.HEADER] body[3.1.text])")?.attributes, [
            .bodySection(Section(part: [1, 2]), partial: Partial(offset: 0, length: 2048), peek: true),
            .bodySection(Section(part: [1], text: .mime), partial: nil, peek: false),
            .bodySection(Section(text: .text), partial: nil, peek: false),
            .bodySection(Section(part: [2], text: .header), partial: nil, peek: false),
            .bodySection(Section(part: [3, 1], text: .text), partial: nil, peek: false),
        ])
        XCTAssertEqual(fetch("f FETCH 6 BODY[HEADER.FIELDS.NOT (Received DKIM-Signature)]")?.attributes,
                       [.bodySection(Section(text: .headerFieldsNot(["Received", "DKIM-Signature"])), partial: nil, peek: false)])
        XCTAssertEqual(fetch("f UID FETCH 9 (BINARY.PEEK[1.2]<0.100> BINARY.SIZE[1] BINARY[])")?.attributes,
                       [.binary(part: [1, 2], partial: Partial(offset: 0, length: 100), peek: true), .binarySize(part: [1]), .binary(part: [], partial: nil, peek: false)])
        XCTAssertNotNil(error("f FETCH 1 BODY[MIME]"))
        XCTAssertNotNil(error("f FETCH 1 BODY[0]"))
        XCTAssertNotNil(error("f FETCH 1 BODY[1]<0.0>"))
        XCTAssertNotNil(error("f FETCH 1 BODY.PEEK"))
        XCTAssertNotNil(error("f FETCH 1 BINARY[TEXT]"))
        XCTAssertNotNil(error("f FETCH 1 (FLAGS  UID)"))
        XCTAssertNotNil(error("f FETCH 1 (BOGUS)"))
        XCTAssertNotNil(error("f FETCH 1 ()"))
    }

    func testFetchModifiers() {
        let f = fetch("a4 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
        XCTAssertEqual(f, FetchCommand(sequences: .ranges([300...500]), attributes: [.flags], changedSince: 12345, vanished: true))
        XCTAssertEqual(fetch("14 UID fetch 1:4803 (FLAGS) (CHANGEDSINCE 20050715194045000)")?.changedSince, 20050715194045000)
        XCTAssertEqual(error("a FETCH 1:5 (FLAGS) (CHANGEDSINCE 1 VANISHED)")?.code, "CLIENTBUG")
        XCTAssertEqual(error("a UID FETCH 1:5 (FLAGS) (VANISHED)")?.code, "CLIENTBUG")
    }

    func testStore() {
        XCTAssertEqual(kind("13 uid store 4803 +Flags (\\Seen)"),
                       .store(StoreCommand(sequences: .ranges([4803...4803]), operation: .add, silent: false, flags: [.seen]), uid: true))
        XCTAssertEqual(kind("t2 STORE 2 -FLAGS \\Deleted $Junk"),
                       .store(StoreCommand(sequences: .ranges([2...2]), operation: .remove, silent: false, flags: [.deleted, .keyword("$Junk")]), uid: false))
        XCTAssertEqual(kind("t3 UID STORE 1:* (UNCHANGEDSINCE 200908292000000) +FLAGS.SILENT ($Forwarded \\Answered)"),
                       .store(StoreCommand(sequences: .ranges([1...SequenceSet.star]), operation: .add, silent: true,
                                           flags: [.keyword("$Forwarded"), .answered], unchangedSince: 200908292000000), uid: true))
        XCTAssertEqual(kind("t4 STORE 1 FLAGS ()"), .store(StoreCommand(sequences: .ranges([1...1]), operation: .replace, silent: false, flags: []), uid: false))
        XCTAssertEqual(kind("t STORE 1 FLAGS (\\Recent \\Foo)"),
                       .store(StoreCommand(sequences: .ranges([1...1]), operation: .replace, silent: false, flags: [.recent, .extension("\\Foo")]), uid: false))
        XCTAssertNotNil(error("t STORE 1 +FLAGS"))
        XCTAssertNotNil(error("t STORE 1 FLAG (\\Seen)"))
        XCTAssertNotNil(error("t STORE 1 FLAGS (\\Seen"))
    }

    // MARK: SEARCH

    func testSearchEveryKey() {
        let jan1994 = 8766    // 1994-01-01
        let cases: [(String, SearchKey)] = [
            ("ALL", .all), ("ANSWERED", .flag(.answered, set: true)), ("UNANSWERED", .flag(.answered, set: false)),
            ("DELETED", .flag(.deleted, set: true)), ("UNDELETED", .flag(.deleted, set: false)),
            ("FLAGGED", .flag(.flagged, set: true)), ("UNFLAGGED", .flag(.flagged, set: false)),
            ("SEEN", .flag(.seen, set: true)), ("UNSEEN", .flag(.seen, set: false)),
            ("DRAFT", .flag(.draft, set: true)), ("UNDRAFT", .flag(.draft, set: false)),
            ("NEW", .new), ("OLD", .old), ("RECENT", .recent),
            ("KEYWORD $Forwarded", .flag(.keyword("$Forwarded"), set: true)), ("UNKEYWORD Junk", .flag(.keyword("Junk"), set: false)),
            ("BCC b", .bcc("b")), ("CC \"c d\"", .cc("c d")), ("FROM alice", .from("alice")), ("TO {2+}\r\nto", .to("to")),
            ("SUBJECT \"Lunch?\"", .subject("Lunch?")), ("BODY x", .body("x")), ("TEXT \"ü\"", .text("ü")),
            ("BEFORE 1-Jan-1994", .before(jan1994)), ("ON \"01-Jan-1994\"", .on(jan1994)), ("SINCE 2-jan-1994", .since(jan1994 + 1)),
            ("SENTBEFORE 1-Jan-1970", .sentBefore(0)), ("SENTON 29-Feb-2000", .sentOn(11_016)), ("SENTSINCE 31-Dec-1969", .sentSince(-1)),
            ("HEADER Message-ID \"<x@y>\"", .header("Message-ID", "<x@y>")), ("HEADER X-Spam \"\"", .header("X-Spam", "")),
            ("LARGER 10000", .larger(10000)), ("SMALLER 99999999999", .smaller(99_999_999_999)),
            ("UID 1,3:5,*", .uids(.ranges([1...1, 3...5, SequenceSet.star...SequenceSet.star]))),
            ("2:4", .sequences(.ranges([2...4]))), ("$", .sequences(.saved)),
            ("NOT SEEN", .not(.flag(.seen, set: true))),
            ("OR FROM a TO b", .or(.from("a"), .to("b"))),
            ("(SEEN FLAGGED)", .and([.flag(.seen, set: true), .flag(.flagged, set: true)])),
            ("(SEEN)", .flag(.seen, set: true)),
            ("MODSEQ 620162338", .modSeq(620162338)),
            ("MODSEQ \"/flags/\\\\draft\" all 620162338", .modSeq(620162338)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(search(text), expected, text)
        }
    }

    func testSearchProgramReturnAndCharset() {
        guard case .search(let s, uid: true)? = kind("s1 UID SEARCH RETURN (MIN MAX COUNT) CHARSET utf-8 OR FROM \"alice\" NOT (SEEN SINCE 1-Feb-1994) UNDELETED") else { return XCTFail() }
        XCTAssertEqual(s.returns, [.min, .max, .count])
        XCTAssertEqual(s.charset, "UTF-8")
        XCTAssertEqual(s.key, .and([.or(.from("alice"), .not(.and([.flag(.seen, set: true), .since(8797)]))), .flag(.deleted, set: false)]))
        guard case .search(let e, uid: false)? = kind("s SEARCH RETURN () ALL") else { return XCTFail() }
        XCTAssertEqual(e.returns, [.all])
        guard case .search(let saved, _)? = kind("s SEARCH RETURN (SAVE) CHARSET \"US-ASCII\" 1:*") else { return XCTFail() }
        XCTAssertEqual(saved.returns, [.save])
        XCTAssertEqual(saved.charset, "US-ASCII")
        guard case .search(let plain, _)? = kind("A9 UID SEARCH 1:* NOT DELETED") else { return XCTFail() }
        XCTAssertNil(plain.returns)
        XCTAssertEqual(plain.key, .and([.sequences(.ranges([1...SequenceSet.star])), .not(.flag(.deleted, set: true))]))
    }

    func testSearchErrors() {
        for bad in ["s SEARCH", "s SEARCH BOGUS", "s SEARCH FROM", "s SEARCH OR SEEN", "s SEARCH ()", "s SEARCH (SEEN",
                    "s SEARCH BEFORE 30-Feb-2020", "s SEARCH BEFORE 1-Foo-2020", "s SEARCH ON 1-Jan-20", "s SEARCH KEYWORD \\Seen",
                    "s SEARCH RETURN (BOGUS) ALL", "s SEARCH HEADER \"a:b\" x", "s SEARCH SEEN  FLAGGED", "s SEARCH MODSEQ \"/flags/x\" bogus 1",
                    "s SEARCH LARGER 9223372036854775808", "s SEARCH SUBJECT \"a\\b\""] {
            XCTAssertEqual(error(bad)?.tag, "s", bad)
        }
    }

    // MARK: mailbox names

    func testModifiedUTF7Names() {
        XCTAssertEqual(kind("m CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-"), .create(mailbox: "~peter/mail/台北/日本語", specialUse: []))
        XCTAssertEqual(kind("m SELECT \"A&-B\""), .select(mailbox: "A&B", SelectParameters()))
        XCTAssertNotNil(error("m SELECT &AGE-"))
        XCTAssertNotNil(error("m SELECT \"&U,BTFw\""))
        XCTAssertNotNil(error("m SELECT \"Entwürfe\""))      // 8-bit without UTF8=ACCEPT
    }

    func testUTF8Names() {
        XCTAssertEqual(kind("u2 SELECT \"Entwürfe\"", utf8: true), .select(mailbox: "Entwürfe", SelectParameters()))
        XCTAssertEqual(kind("u3 COPY 1:3 \"A&-B\"", utf8: true), .copy(.ranges([1...3]), mailbox: "A&-B", uid: false))
        XCTAssertEqual(kind("u SELECT {5+}\r\nInBoX", utf8: true), .select(mailbox: "INBOX", SelectParameters()))
        XCTAssertNotNil(error(Array("u SELECT {2}\r\n\u{C3}\u{28}\r\n".unicodeScalars.map { UInt8($0.value) }), utf8: true))
    }

    func testInboxCaseFolded() {
        for spelling in ["INBOX", "inbox", "Inbox", "\"iNbOx\"", "{5+}\r\ninBOX"] {
            XCTAssertEqual(kind("x STATUS \(spelling) (MESSAGES)"), .status(mailbox: "INBOX", items: [.messages]), spelling)
        }
        XCTAssertEqual(kind("x SELECT inbox/sub"), .select(mailbox: "inbox/sub", SelectParameters()))
    }

    // MARK: hostile input

    func testDeepParenthesesFailWithoutCrash() {
        let deep = "s SEARCH " + String(repeating: "(", count: 1000) + "ALL" + String(repeating: ")", count: 1000)
        XCTAssertEqual(error(deep)?.code, "LIMIT")
        let nots = "s SEARCH " + String(repeating: "NOT ", count: 1000) + "SEEN"
        XCTAssertEqual(error(nots)?.code, "LIMIT")
        let ors = "s SEARCH " + String(repeating: "OR SEEN ", count: 1000) + "SEEN"
        XCTAssertEqual(error(ors)?.code, "LIMIT")
        // Within the limit it works.
        XCTAssertEqual(search(String(repeating: "(", count: 20) + "ALL" + String(repeating: ")", count: 20)), .all)
    }

    func testHugeSequenceSetHitsLimit() {
        var limits = IMAPLimits()
        limits.maxSequenceItems = 1000
        let set = (1...2000).map { String($0 * 2) }.joined(separator: ",")
        XCTAssertEqual(error(Array("f FETCH \(set) FLAGS\r\n".utf8), limits: limits)?.code, "LIMIT")
        let ok = (1...1000).map { String($0 * 2) }.joined(separator: ",")
        guard case .success(let command) = IMAPParser.parse(Array("f FETCH \(ok) FLAGS\r\n".utf8), options: IMAPParserOptions(limits: limits)),
              case .fetch(let f, uid: false) = command.kind, case .ranges(let r) = f.sequences else { return XCTFail() }
        XCTAssertEqual(r.count, 1000)
    }

    func testNULAndControlsRefused() {
        XCTAssertEqual(error(Array("a NO\0OP\r\n".utf8))?.tag, "a")
        XCTAssertNil(error(Array("\0a NOOP\r\n".utf8))?.tag)
        XCTAssertNotNil(error(Array("a LOGIN \"x\0\" y\r\n".utf8)))
        XCTAssertNotNil(error(Array("a LOGIN {3}\r\nx\0y z\r\n".utf8)))
        XCTAssertNotNil(error(Array("a LOGIN x\ty z\r\n".utf8)))
    }

    func testInvalidUTF8InQuotedRefused() {
        for bad: [UInt8] in [[0xC3, 0x28], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xE2, 0x82]] {
            let unit = Array("a SEARCH SUBJECT \"".utf8) + bad + Array("\"\r\n".utf8)
            XCTAssertEqual(error(unit)?.tag, "a")
        }
    }

    func testMissingTagAndCommand() {
        XCTAssertNil(error("+ NOOP")?.tag)
        XCTAssertNil(error("* NOOP")?.tag)
        XCTAssertNil(error("")?.tag)
        XCTAssertEqual(error("abc")?.tag, "abc")
        XCTAssertEqual(error("abc FROB")?.tag, "abc")
        XCTAssertEqual(error("abc NOOP extra")?.tag, "abc")
        XCTAssertEqual(error(Array("abc NOOP".utf8))?.message, "missing CRLF")
    }

    /// Every prefix of realistic commands: an error (never a crash), or for a few a shorter command.
    func testTruncatedAtEveryOffset() {
        let units = [
            "a2 SELECT \"INBOX\" (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:3,5:8 41,43:44,46:211)))\r\n",
            "A8 UID FETCH 1:5 (UID FLAGS BODY.PEEK[HEADER.FIELDS (date subject)]<0.100>) (CHANGEDSINCE 5 VANISHED)\r\n",
            "s1 UID SEARCH RETURN (MIN) CHARSET UTF-8 OR FROM {5}\r\nalice NOT (SEEN SINCE 1-Feb-1994) MODSEQ \"/flags/\\\\draft\" all 6\r\n",
            "A APPEND Drafts (\\Draft) \" 7-Feb-1994 21:52:25 -0800\" {5+}\r\nhello ~{3}\r\na\0b\r\n",
            "m6 LIST (SUBSCRIBED) \"\" (\"INBOX\" %) RETURN (CHILDREN STATUS (MESSAGES))\r\n",
            "t3 UID STORE 1:* (UNCHANGEDSINCE 2) +FLAGS.SILENT ($Junk \\Seen)\r\n",
            "3 ID (\"name\" \"Thunderbird\" \"os\" NIL)\r\n",
            "m1 CREATE \"Entw&APw-rfe\" (USE (\\Drafts))\r\n",
        ]
        for u in units {
            let bytes = Array(u.utf8)
            for opts in [options(), options(utf8: true)] {
                if case .failure(let e) = IMAPParser.parse(bytes, options: opts) { XCTFail("\(u): \(e)") }
                for cut in 0..<bytes.count {
                    _ = IMAPParser.parse(Array(bytes[..<cut]), options: opts)
                    let withEnd = Array(bytes[..<cut]) + [13, 10]
                    if case .success(let c) = IMAPParser.parse(withEnd, options: opts) {
                        // Only cuts that leave a complete shorter command may parse.
                        XCTAssertTrue(u.hasPrefix(c.tag), "\(cut)")
                    }
                }
            }
        }
    }

    func testDateTimeValidation() {
        for bad in ["\"31-Apr-2020 00:00:00 +0000\"", "\"1-Jan-2020 24:00:00 +0000\"", "\"1-Jan-2020 00:00:00 0000\"",
                    "\"1-Jan-2020 00:00:00 +0070\"", "\"1-Jan-2020 0:00:00 +0000\"", "\"29-Feb-2019 00:00:00 +0000\""] {
            XCTAssertNotNil(error("A APPEND X \(bad) {1+}\r\nx"), bad)
        }
        XCTAssertEqual(kind("A APPEND X \"29-Feb-2020 23:59:59 -0130\" {1+}\r\nx"),
                       .append(mailbox: "X", messages: [AppendMessage(internalDate: 1_583_020_799 + 5400, data: [0x78])]))
    }
}
