// Shared helpers for the MIME tests: message builders, byte slicing, a compact structure notation
// and a deterministic random generator for the fuzz loops.

import MIME
import XCTest

/// Builds message bytes from lines joined by CRLF (or LF when `lf` is set).
func message(_ lines: [String], lf: Bool = false) -> [UInt8] {
    Array(lines.joined(separator: lf ? "\n" : "\r\n").utf8)
}

func slice(_ m: [UInt8], _ from: Int, _ to: Int) -> String {
    String(decoding: m[from..<to], as: UTF8.self)
}

func bodyText(_ m: [UInt8], _ p: BodyPart) -> String { slice(m, p.bodyStart, p.bodyEnd) }
func headerText(_ m: [UInt8], _ p: BodyPart) -> String { slice(m, p.headerStart, p.bodyStart) }

/// "type/subtype", children in parentheses, an encapsulated body in brackets:
/// `multipart/mixed(text/plain message/rfc822[text/plain])`.
func shape(_ p: BodyPart) -> String {
    var s = "\(p.type)/\(p.subtype)"
    if !p.parts.isEmpty { s += "(" + p.parts.map(shape).joined(separator: " ") + ")" }
    if let m = p.message { s += "[" + shape(m.body) + "]" }
    return s
}

/// The part at an IMAP-style section path ("1", "2.1"; a message/rfc822 part's children are
/// reached through its encapsulated body as in RFC 3501 §6.4.5).
func part(_ info: MessageInfo, _ path: String) -> BodyPart? {
    var p = info.body
    for comp in path.split(separator: ".") {
        guard let n = Int(comp), n >= 1 else { return nil }
        if let m = p.message { p = m.body }
        if p.type == "multipart" {
            guard n <= p.parts.count else { return nil }
            p = p.parts[n - 1]
        } else if n != 1 {
            return nil
        }
    }
    return p
}

func depthOf(_ p: BodyPart) -> Int {
    var d = 0
    for c in p.parts { d = max(d, depthOf(c)) }
    if let m = p.message { d = max(d, depthOf(m.body)) }
    return d + 1
}

func assertValid(_ info: MessageInfo, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNil(info.invariantViolation(), file: file, line: line)
}

