// Which IMAP actions teach rspamd what (issue 14), without sockets: into Junk (by special use
// or by junk_folder's name) → spam, MOVE out of Junk except into Trash → ham, COPY out of Junk
// or Junk → Junk → nothing; $Junk / $NotJunk added → spam / ham.
import XCTest
import Logging
import NIOPosix
import MailModel
import SpamFilter
@testable import IMAPServer

final class IMAPSpamLearningTests: XCTestCase {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func box(_ name: String, _ use: String = "") -> MailboxSummary {
        MailboxSummary(id: 1, name: name, specialUse: use, uidValidity: 1, uidNext: 1, highestModSeq: 1, messages: 0, subscribed: true)
    }

    func testMovesAndCopies() {
        let learner = SpamLearner(loop: Self.group.next(), controller: RspamdEndpoint(host: "127.0.0.1", port: 9), password: nil,
                                  timeout: .seconds(1), capacity: 1, logger: Logger(label: "test"))
        let l = IMAPSpamLearning(learner: learner, junkFolder: "Junk", logger: Logger(label: "test"))
        let inbox = box("INBOX"), junk = box("Junk", "\\Junk"), spam = box("Spam", "\\Junk"), trash = box("Trash", "\\Trash")
        let named = box("Junk"), archive = box("Archive", "\\Archive")
        let cases: [(MailboxSummary?, MailboxSummary, Bool, LearnKind?)] = [
            (inbox, junk, true, .spam), (inbox, junk, false, .spam), (inbox, spam, true, .spam), (inbox, named, true, .spam),
            (nil, junk, false, .spam),                               // APPEND into Junk
            (junk, inbox, true, .ham), (junk, archive, true, .ham), (spam, inbox, true, .ham),
            (junk, inbox, false, nil),                              // a copy: still in Junk
            (junk, trash, true, nil), (junk, spam, true, nil),       // deleted, or junk to junk
            (inbox, archive, true, nil), (inbox, trash, true, nil), (nil, inbox, false, nil),
        ]
        for (from, to, move, want) in cases {
            XCTAssertEqual(l.kind(from: from, to: to, move: move), want, "\(from?.name ?? "APPEND") → \(to.name) move=\(move)")
        }
    }

    func testKeywords() {
        XCTAssertEqual(IMAPSpamLearning.kind(storing: ["$Junk"], operation: .add), .spam)
        XCTAssertEqual(IMAPSpamLearning.kind(storing: ["$junk", "work"], operation: .replace), .spam)
        XCTAssertEqual(IMAPSpamLearning.kind(storing: ["$NotJunk"], operation: .add), .ham)
        XCTAssertNil(IMAPSpamLearning.kind(storing: ["$Junk"], operation: .remove))
        XCTAssertNil(IMAPSpamLearning.kind(storing: ["$Junk", "$NotJunk"], operation: .add))
        XCTAssertNil(IMAPSpamLearning.kind(storing: ["$Forwarded"], operation: .add))
    }
}
