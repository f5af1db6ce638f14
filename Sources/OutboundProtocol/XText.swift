// xtext (RFC 3461 §4): how ENVID= and ORCPT= carry arbitrary text in an SMTP parameter.
// Encoding only; what a server sends back in a DSN is decoded by whoever parses it.

public enum XText {
    //  xtext = *( xchar / hexchar )
    //  xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except "+" and "="
    //  hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
    public static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in text.utf8 {
            if b >= 33, b <= 126, b != UInt8(ascii: "+"), b != UInt8(ascii: "=") {
                out.append(b)
            } else {
                out += [UInt8(ascii: "+"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
