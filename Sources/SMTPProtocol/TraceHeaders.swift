// Trace header fields prepended at final delivery: Return-Path and Received
// (RFC 5321 §4.4, RFC 5322 §3.6.7), with RFC 5322 §3.3 dates. Foundation is used only for
// Date/TimeZone; the date is formatted by hand (fast, locale-free, deterministic).
import Foundation

public enum TraceHeaders {
    /// Longest line we produce when folding, excluding CRLF (RFC 5322 §2.1.1: SHOULD be < 78).
    static let foldWidth = 77

    /// `Return-Path: <local@domain>` CRLF, or `Return-Path: <>` CRLF for the null sender.
    /// RFC 5321 §4.4: added by the final delivery agent from MAIL FROM.
    public static func returnPath(_ sender: MailPath?) -> [UInt8] {
        let path = sender.map { stripControls($0.address) } ?? ""
        return Array("Return-Path: <\(path)>\r\n".utf8)
    }

    /// A Received header (RFC 5321 §4.4, Time-stamp-line), folded at clause boundaries:
    ///
    ///     Received: from helo ([192.0.2.1])
    ///     	(using TLSv1.3 with cipher ...) by mx.example.org with ESMTPS id ABC
    ///     	for <user@example.org>; Tue, 1 Jul 2025 10:00:00 +0000
    ///
    /// - `proto`: the With keyword ("LMTP", "ESMTP", "ESMTPS", "ESMTPSA", "UTF8SMTPS", ...;
    ///   see `SMTPSession.receivedProtocol`).
    /// - `recipient`: give it only when the message has exactly one recipient (privacy).
    /// - `clientAddress`: an IP address becomes an address literal (`[192.0.2.1]`,
    ///   `[IPv6:2001:db8::1]`); anything else (a unix socket) becomes a comment; empty is omitted.
    public static func received(
        from helo: String, clientAddress: String, by host: String, with proto: String, id: String,
        for recipient: MailPath?, tls: String? = nil, authenticatedUser: String? = nil, date: Date, timeZone: TimeZone = utc
    ) -> [UInt8] {
        var clauses: [String] = []
        let heloName = sanitize(helo, allowParens: false)
        var from = "from \(heloName.isEmpty ? "unknown" : heloName)"
        if let info = tcpInfo(clientAddress) { from += " (\(info))" }
        clauses.append(from)
        if let tls, !tls.isEmpty {
            clauses.append("(using \(sanitize(tls, allowParens: true)))")
        }
        if let user = authenticatedUser, !user.isEmpty {
            clauses.append("(Authenticated sender: \(sanitize(user, allowParens: false)))")
        }
        clauses.append("by \(sanitize(host, allowParens: false))")
        clauses.append("with \(sanitize(proto, allowParens: false))")
        let cleanID = sanitize(id, allowParens: false)
        if !cleanID.isEmpty { clauses.append("id \(cleanID)") }
        if let recipient { clauses.append("for <\(stripControls(recipient.address))>") }
        clauses[clauses.count - 1] += ";"
        clauses.append(rfc5322Date(date, timeZone: timeZone))
        return Array(fold("Received:", clauses).utf8)
    }

    public static let utc = TimeZone(secondsFromGMT: 0)!

    /// RFC 5322 §3.3 date-time, e.g. "Tue, 1 Jul 2025 10:00:00 +0000".
    public static func rfc5322Date(_ date: Date, timeZone: TimeZone = utc) -> String {
        let offset = timeZone.secondsFromGMT(for: date)
        let seconds = Int(date.timeIntervalSince1970.rounded(.down)) + offset
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let weekday = ((days % 7) + 11) % 7          // 1970-01-01 was a Thursday (index 4)
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let sign = offset < 0 ? "-" : "+"
        let absOffset = abs(offset) / 60
        return "\(weekdays[weekday]), \(day) \(months[month - 1]) \(year) "
            + "\(pad2(secondOfDay / 3600)):\(pad2(secondOfDay / 60 % 60)):\(pad2(secondOfDay % 60)) "
            + "\(sign)\(pad2(absOffset / 60))\(pad2(absOffset % 60))"
    }

    // MARK: - Helpers

    /// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian
    /// (H. Hinnant's civil_from_days).
    static func civilDate(daysSinceEpoch: Int) -> (Int, Int, Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func pad2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// TCP-info for the From clause (RFC 5321 §4.4): an address literal for IPs.
    static func tcpInfo(_ address: String) -> String? {
        let clean = sanitize(address, allowParens: false)
        if clean.isEmpty { return nil }
        if clean.hasPrefix("[") { return clean }
        if AddressParser.isIPv4(Array(clean.utf8)[...]) { return "[\(clean)]" }
        if clean.contains(":"), AddressParser.isIPv6(Array(clean.utf8)[...]) { return "[IPv6:\(clean)]" }
        return clean
    }

    /// Drops CR, LF and other controls (addresses: their grammar already excludes the rest).
    static func stripControls(_ text: String) -> String {
        String(decoding: text.utf8.filter { $0 >= 0x20 && $0 != 0x7F }, as: UTF8.self)
    }

    /// Keeps header text on one line: drops CR/LF and other controls; unbalanced or (when
    /// `allowParens` is false) any parentheses are removed so comments stay well-formed.
    static func sanitize(_ text: String, allowParens: Bool) -> String {
        var depth = 0
        var balanced = true
        for b in text.utf8 {
            if b == UInt8(ascii: "(") { depth += 1 }
            if b == UInt8(ascii: ")") { depth -= 1; if depth < 0 { balanced = false } }
        }
        let keepParens = allowParens && balanced && depth == 0
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            if b < 0x20 || b == 0x7F { continue }
            if !keepParens, b == UInt8(ascii: "(") || b == UInt8(ascii: ")") { continue }
            if b == ASCII.backslash { continue }
            out.append(b)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Joins clauses with spaces, folding (CRLF TAB) before a clause that would push the line
    /// past `foldWidth`. A clause that does not fit on a line of its own (or right after the
    /// field name, where we never fold) is folded at its spaces instead.
    static func fold(_ name: String, _ clauses: [String]) -> String {
        var out = name
        var lineLength = name.utf8.count
        var onlyName = true
        func place(_ piece: String, fold: Bool) {
            if fold {
                out += "\r\n\t" + piece
                lineLength = 1 + piece.utf8.count
            } else {
                out += " " + piece
                lineLength += 1 + piece.utf8.count
            }
            onlyName = false
        }
        for clause in clauses {
            let length = clause.utf8.count
            if lineLength + 1 + length <= foldWidth {
                place(clause, fold: false)
            } else if !onlyName, 1 + length <= foldWidth {
                place(clause, fold: true)
            } else {
                for word in clause.split(separator: " ") {
                    let fits = lineLength + 1 + word.utf8.count <= foldWidth
                    place(String(word), fold: !fits && !onlyName && lineLength > 1)
                }
            }
        }
        return out + "\r\n"
    }
}
