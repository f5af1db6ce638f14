// The Date: header (RFC 5322 §3.3, obsolete forms §4.3) to seconds since the epoch, UTC.
// Lenient like Dovecot's message_date_parse; bounded work per byte, no allocation beyond tokens.
import MailSyntax

public enum RFC5322Date {
    /// Most tokens looked at; a Date: value is a dozen, the rest is ignored.
    static let maxTokens = 32
    /// Digits a number may have (a year has four; more is no date).
    static let maxDigits = 9
    static let secondsPerDay: Int64 = 86_400

    /// Seconds since 1970-01-01 00:00 UTC, or nil when `s` is no date.
    public static func parse(_ s: String) -> Int64? { parseWithOffset(s)?.time }

    //  date-time = [ day-of-week "," ] date time [CFWS]           (RFC 5322 §3.3)
    //  date      = day month year ; time = hour ":" minute [ ":" second ] FWS zone
    //  obs-year  = 2*DIGIT (00-49 → 20xx, 50-99 → 19xx), 3 digits + 1900    (§4.3)
    //  obs-zone  = "UT" / "GMT" / "EST" / "EDT" / "CST" / "CDT" / "MST" / "MDT" / "PST" / "PDT"
    //              / military letters, which count as "-0000"                (§4.3)
    // Also taken: no weekday or no comma after it, missing seconds (or no time at all), "-" between day, month and
    // year, month names spelt out, comments anywhere, no zone (UTC), the asctime order
    // "Mon Jan  1 10:00:00 [zone] 2024", "GMT+0100", and anything after the zone.
    /// The date and the zone it was written in (minutes east of UTC; the local date is
    /// `time + offsetMinutes * 60`).
    public static func parseWithOffset(_ s: String) -> (time: Int64, offsetMinutes: Int)? {
        var t = Tokens(tokenize(Array(s.utf8)))
        if case .word(let w)? = t.peek, month(w) == nil {     // day-of-week, any spelling
            t.advance()
            t.skip(",")
            t.skip(".")
        }
        let day: Int, mon: Int, yearToken: Token
        var clock: (Int, Int, Int)
        var zone = 0
        if case .number(let d, _)? = t.peek {
            t.advance()
            t.skip("-")
            guard case .word(let m)? = t.next(), let mm = month(m) else { return nil }
            t.skip("-")
            guard let y = t.next() else { return nil }
            guard let c = t.peek == nil ? (0, 0, 0) : time(&t) else { return nil }   // date only: midnight
            day = d; mon = mm; yearToken = y; clock = c
            zone = timeZone(&t)
        } else if case .word(let m)? = t.peek, let mm = month(m) {   // asctime
            t.advance()
            guard case .number(let d, _)? = t.next(), let c = time(&t) else { return nil }
            day = d; mon = mm; clock = c
            if case .number? = t.peek {
                yearToken = t.next()!
                zone = timeZone(&t)
            } else {
                zone = timeZone(&t)
                guard let y = t.next() else { return nil }
                yearToken = y
            }
        } else {
            return nil
        }
        guard case .number(let y, let digits) = yearToken else { return nil }
        let year = digits <= 2 ? (y < 50 ? 2000 + y : 1900 + y) : digits == 3 ? 1900 + y : y
        guard (1...31).contains(day), (1000...9999).contains(year) else { return nil }
        let (h, mi, sec) = clock
        let days = daysFromCivil(year: year, month: mon, day: day)
        let local = days * secondsPerDay + Int64(h * 3600 + mi * 60 + sec)
        return (local - Int64(zone) * 60, zone)
    }

    /// hour ":" minute [":" second]; "." is taken as the separator too.
    static func time(_ t: inout Tokens) -> (Int, Int, Int)? {
        guard case .number(let h, _)? = t.next() else { return nil }
        guard t.skip(":") || t.skip("."), case .number(let m, _)? = t.next() else { return nil }
        var s = 0
        if t.peekSymbol(":") || t.peekSymbol(".") {
            t.advance()
            guard case .number(let sv, _)? = t.next() else { return nil }
            s = sv
        }
        guard h <= 23, m <= 59, s <= 60 else { return nil }
        return (h, m, s)
    }

    /// Minutes east of UTC from "+hhmm" / "-hhmm", a zone name, or nothing (0).
    static func timeZone(_ t: inout Tokens) -> Int {
        if case .word(let w)? = t.peek {
            t.advance()
            if (w == "gmt" || w == "ut" || w == "utc"), let n = numericZone(&t) { return n }
            return obsoleteZones[w] ?? 0
        }
        return numericZone(&t) ?? 0
    }

    static func numericZone(_ t: inout Tokens) -> Int? {
        let sign: Int
        if t.skip("+") { sign = 1 } else if t.skip("-") { sign = -1 } else { return nil }
        guard case .number(let n, let digits)? = t.next() else { return nil }
        let (h, m) = digits <= 2 ? (n, 0) : (n / 100, n % 100)
        guard h <= 23, m <= 59 else { return 0 }
        return sign * (h * 60 + m)
    }

    /// RFC 5322 §4.3; military zones and unknown names are "-0000" (no information): 0.
    static let obsoleteZones: [String: Int] = [
        "ut": 0, "utc": 0, "gmt": 0, "z": 0,
        "est": -5 * 60, "edt": -4 * 60, "cst": -6 * 60, "cdt": -5 * 60,
        "mst": -7 * 60, "mdt": -6 * 60, "pst": -8 * 60, "pdt": -7 * 60,
    ]

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// 1…12 for a month name or its first three letters (case already folded).
    static func month(_ w: String) -> Int? {
        guard w.count >= 3 else { return nil }
        return months.firstIndex(of: String(w.prefix(3))).map { $0 + 1 }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    // MARK: tokens

    enum Token: Equatable {
        case word(String)                 // letters, lowercased
        case number(Int, digits: Int)
        case symbol(UInt8)
    }

    struct Tokens {
        let tokens: [Token]
        var at = 0
        init(_ tokens: [Token]) { self.tokens = tokens }
        var peek: Token? { at < tokens.count ? tokens[at] : nil }
        mutating func advance() { at += 1 }
        mutating func next() -> Token? {
            defer { at += 1 }
            return peek
        }
        func peekSymbol(_ c: Unicode.Scalar) -> Bool { peek == .symbol(UInt8(ascii: c)) }
        /// Consumes the symbol if it is next.
        @discardableResult mutating func skip(_ c: Unicode.Scalar) -> Bool {
            guard peekSymbol(c) else { return false }
            at += 1
            return true
        }
    }

    /// Words, numbers and single symbols; whitespace separates, comments (RFC 5322 §3.2.2,
    /// nested, with quoted-pairs) are dropped. A number with too many digits ends the tokens.
    static func tokenize(_ b: [UInt8]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < b.count && out.count < maxTokens {
            let c = b[i]
            if c == ASCII.lparen {
                var depth = 0
                while i < b.count {
                    if b[i] == ASCII.backslash { i += 2; continue }
                    if b[i] == ASCII.lparen { depth += 1 }
                    if b[i] == ASCII.rparen { depth -= 1; if depth == 0 { i += 1; break } }
                    i += 1
                }
            } else if ASCII.isAlpha(c) {
                var w: [UInt8] = []
                while i < b.count && ASCII.isAlpha(b[i]) { w.append(ASCII.lower(b[i])); i += 1 }
                out.append(.word(String(decoding: w, as: UTF8.self)))
            } else if ASCII.isDigit(c) {
                var n = 0, digits = 0
                while i < b.count && ASCII.isDigit(b[i]) {
                    n = n * 10 + Int(b[i] - 0x30)
                    digits += 1
                    i += 1
                    if digits > maxDigits { return out }
                }
                out.append(.number(n, digits: digits))
            } else if ASCII.isWSP(c) || c == ASCII.cr || c == ASCII.lf {
                i += 1
            } else {
                out.append(.symbol(c))
                i += 1
            }
        }
        return out
    }
}
