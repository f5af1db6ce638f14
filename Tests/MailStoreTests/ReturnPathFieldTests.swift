// The leading Return-Path field the store strips from queued bodies (DESIGN §4), as a pure
// function: table-driven cases (folds, bare LF, other fields, the scan limit, whole-message
// fields), and the queue watch table's coalescing.
import XCTest
@testable import MailStore
@testable import StoreServer

final class ReturnPathFieldTests: XCTestCase {
    func testLengths() {
        let cases: [(String, Bool, Int)] = [
            ("Return-Path: <a@b>\r\nFrom: x\r\n\r\nhi\r\n", false, 20),
            ("RETURN-PATH: <a@b>\r\nFrom: x\r\n", false, 20),
            ("return-path:<>\nFrom: x\n", false, 15),                         // bare LF
            ("Return-Path:\r\n <a@b>\r\n\t(folded)\r\nFrom: x\r\n", false, 33), // continuation lines
            ("From: x\r\nReturn-Path: <a@b>\r\n", false, 0),                   // not the first field
            ("X-Return-Path: <a@b>\r\n", false, 0),
            ("Return-Path <a@b>\r\n", false, 0),                               // no colon right after the name
            ("Return-Pat", true, 0),
            ("", true, 0),
            ("Return-Path: <a@b>", false, 0),                                  // its end not seen: left alone
            ("Return-Path: <a@b>", true, 18),                                  // the whole message is the field
            ("Return-Path: <a@b>\r\n", false, 0),                              // a fold may follow: left alone
            ("Return-Path: <a@b>\r\n", true, 20),
        ]
        for (text, complete, expected) in cases {
            XCTAssertEqual(ReturnPathField.length(Array(text.utf8), complete: complete), expected, text.debugDescription)
        }
        XCTAssertEqual("Return-Path:\r\n <a@b>\r\n\t(folded)\r\n".utf8.count, 33)
    }

    func testAFieldLongerThanTheScanIsLeftAlone() {
        let long = Array(("Return-Path: <" + String(repeating: "a", count: ReturnPathField.scanLimit) + "@b>\r\nFrom: x\r\n").utf8)
        XCTAssertEqual(ReturnPathField.length(Array(long.prefix(ReturnPathField.scanLimit)), complete: false), 0)
    }

    func testQueueWatchesCoalesceUntilPulled() {
        var t = QueueWatchTable()
        let a = ObjectIdentifier(ReturnPathFieldTests.self), b = ObjectIdentifier(QueueWatchTable.self as Any.Type)
        XCTAssertEqual(t.changed(), [], "nobody watches")
        t.add(a); t.add(b)
        XCTAssertEqual(Set(t.changed()), [a, b])
        XCTAssertEqual(t.changed(), [], "one outstanding each")
        t.pulled(a)
        XCTAssertEqual(t.changed(), [a])
        t.remove(b); t.pulled(b)
        XCTAssertEqual(t.notified[b], nil, "a pull after removal does not watch again")
        t.pulled(a)
        XCTAssertEqual(t.changed(), [a])
    }
}
