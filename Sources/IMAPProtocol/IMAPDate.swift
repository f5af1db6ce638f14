// INTERNALDATE's date-time (RFC 9051 §9: "dd-Mon-yyyy hh:mm:ss +zzzz") from seconds since the
// epoch. Pure arithmetic on the proleptic Gregorian calendar: no locale, no time zone database.

public enum IMAPDate {
    /// RFC 9051 §9 `date-month`.
    public static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `06-Dec-2026 03:04:05 +0000` (the caller quotes it). `offsetMinutes` is the zone to show
    /// the instant in (east of UTC positive); the day is written with two digits, as Dovecot does
    /// (RFC 9051 `date-day-fixed` also allows a leading space).
    public static func format(_ seconds: Int64, offsetMinutes: Int = 0) -> String {
        let local = seconds + Int64(offsetMinutes) * 60
        let days = floorDiv(local, 86_400)
        let secs = Int(local - days * 86_400)
        let (y, m, d) = civil(fromDays: days)
        let zone = abs(offsetMinutes)
        return pad2(d) + "-" + months[m - 1] + "-" + pad(y, 4) + " "
            + pad2(secs / 3600) + ":" + pad2(secs / 60 % 60) + ":" + pad2(secs % 60) + " "
            + (offsetMinutes < 0 ? "-" : "+") + pad2(zone / 60) + pad2(zone % 60)
    }

    /// Year, month (1–12), day (1–31) of a day count from 1970-01-01 (Howard Hinnant's
    /// `civil_from_days`).
    static func civil(fromDays z0: Int64) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097                                   // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365  // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)             // [0, 365]
        let mp = (5 * doy + 2) / 153                                  // [0, 11]
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d))
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    private static func pad2(_ n: Int) -> String { pad(n, 2) }

    private static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(abs(n))
        let padded = s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        return n < 0 ? "-" + padded : padded
    }
}
