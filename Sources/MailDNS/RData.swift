// Reading resource-record data as libunbound returns it (uncompressed wire format, RFC 1035
// §3.3): MX (§3.3.9), A (§3.4.1), AAAA (RFC 3596 §2.2). Pure functions; malformed input → nil.
import MailSyntax
#if canImport(Glibc)
import Glibc
#endif

public enum RData {
    /// RFC 1035 §3.3.9: MX RDATA = PREFERENCE (16 bits) EXCHANGE (domain-name).
    public static func mx(_ rdata: [UInt8]) -> MXRecord? {
        guard rdata.count >= 3 else { return nil }
        guard let (name, end) = domainName(rdata, at: 2), end == rdata.count else { return nil }
        return MXRecord(preference: UInt16(rdata[0]) << 8 | UInt16(rdata[1]), exchange: name)
    }

    /// RFC 1035 §3.1: a sequence of length-prefixed labels ending with the zero-length root
    /// label; returned lower-case, dot-separated, without the trailing dot ("" for the root),
    /// with where it ended. Compression pointers (§4.1.4) do not occur in rdata as libunbound
    /// hands it over and are refused, as are labels with bytes a host name cannot hold.
    public static func domainName(_ bytes: [UInt8], at start: Int) -> (String, Int)? {
        var i = start, labels = [String](), total = 0
        while i < bytes.count {
            let len = Int(bytes[i])
            if len == 0 { return (labels.joined(separator: "."), i + 1) }
            guard len <= DNSName.maximumLabelLength, i + 1 + len <= bytes.count else { return nil }
            let label = bytes[(i + 1)...(i + len)]
            guard label.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != ASCII.dot }) else { return nil }
            total += len + 1
            guard total <= DNSName.maximumLength + 1 else { return nil }
            labels.append(String(decoding: label.map(ASCII.lower), as: UTF8.self))
            i += 1 + len
        }
        return nil
    }

    /// The text form of 4 or 16 address bytes (inet_ntop).
    public static func addressText(_ bytes: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        return bytes.withUnsafeBytes { p in
            inet_ntop(family, p.baseAddress, &out, socklen_t(out.count)) != nil ? String(cString: out) : "?"
        }
    }
}
