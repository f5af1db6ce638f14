// The watch table's additions for imapd's SELECT memo (Watches.swift): a watch whose id the
// worker does not know yet holds its first change until announced; an unarmed watch notifies
// only after a pull; a memo watch belongs to the connection, not to a session.
import XCTest
@testable import StoreServer

final class WatchAnnounceTests: XCTestCase {
    let conn = ObjectIdentifier(WatchAnnounceTests.self)

    func testChangeBeforeTheReplyIsHeldThenSent() {
        var t = WatchTable()
        let w = t.add(connection: conn, session: 1, mailboxID: 7, announced: false)
        XCTAssertTrue(t.changed(mailboxID: 7, modSeq: 5).isEmpty, "nothing sent before the reply")
        XCTAssertTrue(t.changed(mailboxID: 7, modSeq: 9).isEmpty)
        XCTAssertEqual(t.announce(w), 9, "the held change goes out after the reply, at its latest MODSEQ")
        XCTAssertNil(t.announce(w), "once")
        XCTAssertTrue(t.changed(mailboxID: 7, modSeq: 10).isEmpty, "still outstanding until pulled")
        t.pulled(w)
        XCTAssertEqual(t.changed(mailboxID: 7, modSeq: 11).map(\.watch), [w])
        let quiet = t.add(connection: conn, session: 1, mailboxID: 8, announced: false)
        XCTAssertNil(t.announce(quiet), "no change meanwhile: nothing to send")
    }

    func testUnarmedWatchWaitsForAPullAndMemoWatchOutlivesSessions() {
        var t = WatchTable()
        let w = t.add(connection: conn, session: WatchTable.detached, mailboxID: 7, armed: false)
        XCTAssertTrue(t.changed(mailboxID: 7, modSeq: 3).isEmpty, "unarmed until pulled")
        t.remove { $0.connection == self.conn && $0.session == 1 }
        XCTAssertNotNil(t.watches[w])
        t.pulled(w)
        XCTAssertEqual(t.changed(mailboxID: 7, modSeq: 4).map(\.watch), [w])
    }
}
