// The decoders SEARCH and BINARY rely on: transfer decoding fed at every split, charsets,
// RFC 2047 encoded words, RFC 2231 parameters and the RFC 5322 date forms mail really uses.

import MIME
import MailSyntax
import XCTest

final class DecodingTests: XCTestCase {

    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    private func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    /// Decodes `input` in two chunks split at every offset, and one byte at a time; each must
    /// equal the whole decode.
    private func assertSplitInvariant(_ input: [UInt8], encoding: String, file: StaticString = #filePath, line: UInt = #line) {
        let whole = TransferDecoder.decode(input, encoding: encoding)!
        for cut in 0...input.count {
            var d = TransferDecoder(encoding: encoding)!
            let got = d.decode(Array(input[..<cut])) + d.decode(Array(input[cut...])) + d.finish()
            XCTAssertEqual(got, whole, "split at \(cut)", file: file, line: line)
        }
        var d = TransferDecoder(encoding: encoding)!
        var got: [UInt8] = []
        for b in input { got += d.decode([b]) }
        got += d.finish()
        XCTAssertEqual(got, whole, "byte at a time", file: file, line: line)
    }

    // MARK: TransferDecoder

    func testEncodingNames() {
        for name in ["7bit", "8BIT", "binary", "", " Base64 ", "QUOTED-PRINTABLE"] {
            XCTAssertNotNil(TransferDecoder(encoding: name), name)
        }
        XCTAssertNil(TransferDecoder(encoding: "x-uuencode"))
        XCTAssertEqual(TransferDecoder.decode(bytes("a=41\r\n"), encoding: "8bit"), bytes("a=41\r\n"))
    }

    func testBase64() {
        XCTAssertEqual(text(TransferDecoder.decode(bytes("SGVsbG8sIFdvcmxkIQ=="), encoding: "base64")!), "Hello, World!")
        // RFC 2045 §6.8: line breaks, whitespace and characters outside the alphabet are ignored.
        XCTAssertEqual(text(TransferDecoder.decode(bytes("SGVs\r\nbG8s IFdv\tcm*xk!IQ==\r\n"), encoding: "base64")!), "Hello, World!")
        XCTAssertEqual(TransferDecoder.decode(bytes("QQ==QUI="), encoding: "base64"), bytes("AAB"), "concatenated padded blocks")
        XCTAssertEqual(TransferDecoder.decode(bytes("QUJD"), encoding: "base64"), bytes("ABC"), "no padding needed")
        XCTAssertEqual(TransferDecoder.decode(bytes("QUJDR"), encoding: "base64"), bytes("ABC"), "incomplete quantum dropped")
    }

    func testBase64EverySplitEqualsWhole() {
        let plain = (0..<200).map { UInt8($0 * 7 & 0xFF) }
        var encoded = Array(Self.base64Lines(plain).utf8)
        encoded.insert(contentsOf: bytes(" \t*"), at: 30)
        assertSplitInvariant(encoded, encoding: "base64")
        XCTAssertEqual(TransferDecoder.decode(encoded, encoding: "base64"), plain)
    }

    /// Base64 in 76-character lines (RFC 2045 §6.8).
    static func base64Lines(_ b: [UInt8]) -> String {
        var s = Array(Base64.encode(b))
        for at in stride(from: 76, to: s.count, by: 76).reversed() { s.insert(contentsOf: "\r\n", at: at) }
        return String(s)
    }

    func testQuotedPrintable() {
        let cases: [(String, String, String)] = [
            ("hex either case", "a=3Db=3db", "a=b=b"),
            ("soft break CRLF", "long li=\r\nne\r\n", "long line\r\n"),
            ("soft break LF", "long li=\nne\n", "long line\n"),
            ("soft break with padding", "li= \t\r\nne", "line"),
            ("trailing whitespace deleted", "end   \r\nnext\t\n", "end\r\nnext\n"),
            ("malformed = kept", "a=zz b=4 c=", "a=zz b=4 c"),
            ("lone = before text", "x = y", "x = y"),
            ("8-bit passes", "caf\u{E9}", "caf\u{E9}"),
            ("utf-8 bytes", "M=C3=BCnchen", "München"),
        ]
        for (name, input, expected) in cases {
            XCTAssertEqual(text(TransferDecoder.decode(bytes(input), encoding: "quoted-printable")!), expected, name)
        }
    }

    func testQuotedPrintableEverySplitEqualsWhole() {
        let input = bytes("Gr=C3=BC=C3=9Fe,  \r\nsoft=\r\nbreak =3D=3d=\n and = malformed=4\r\ntrailing \t \r\nend=")
        assertSplitInvariant(input, encoding: "quoted-printable")
        XCTAssertEqual(text(TransferDecoder.decode(input, encoding: "quoted-printable")!),
                       "Grüße,\r\nsoftbreak == and = malformed=4\r\ntrailing\r\nend")
    }

    func testQuotedPrintableLongLineInChunks() {
        // A line longer than the decoder keeps back is decoded in pieces with the same result.
        let line = String(repeating: "ab=C3=A4 ", count: 2000) + "=\r\nx"
        let input = bytes(line)
        let whole = TransferDecoder.decode(input, encoding: "quoted-printable")!
        var d = TransferDecoder(encoding: "quoted-printable")!
        var got: [UInt8] = []
        var i = 0
        while i < input.count {
            let n = min(1000 + i % 7, input.count - i)
            got += d.decode(Array(input[i..<(i + n)]))
            i += n
        }
        got += d.finish()
        XCTAssertEqual(got, whole)
        XCTAssertEqual(text(whole), String(repeating: "abä ", count: 2000) + "x")
    }

    func testRandomInputAnyChunkingEqualsWhole() {
        // Bytes that matter to the decoders, in random runs longer and shorter than what
        // quoted-printable keeps back, cut into random chunks.
        let alphabet = Array("=A3f \t\r\nQx+/".utf8)
        var rng = SplitMix(seed: 7)
        for round in 0..<200 {
            let count = round % 10 == 0 ? Int.random(in: 4000...9000, using: &rng) : Int.random(in: 0...300, using: &rng)
            let input = (0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            for encoding in ["quoted-printable", "base64"] {
                let whole = TransferDecoder.decode(input, encoding: encoding)!
                var d = TransferDecoder(encoding: encoding)!
                var got: [UInt8] = []
                var i = 0
                while i < input.count {
                    let n = min(Int.random(in: 1...5000, using: &rng), input.count - i)
                    got += d.decode(Array(input[i..<(i + n)]))
                    i += n
                }
                got += d.finish()
                XCTAssertEqual(got, whole, "\(encoding) round \(round)")
            }
        }
    }

    // MARK: Charsets

    func testCharsets() {
        let cases: [(String, [UInt8], String)] = [
            ("utf-8", [0x4D, 0xC3, 0xBC], "Mü"),
            ("US-ASCII", bytes("plain"), "plain"),
            ("iso-8859-1", [0x4D, 0xFC, 0xDF], "Müß"),
            ("ISO-8859-15", [164, 117, 114, 111], "€uro"),
            ("iso-8859-2", [0xB3, 0xF3, 0xBF], "łóż"),
            ("windows-1252", [0x80, 0x93, 0x41, 0x94], "€“A”"),
            ("windows-1251", [0xCF, 0xF0, 0xE8], "При"),
            ("koi8-r", [240, 210, 201, 215, 197, 212], "Привет"),
            ("iso-2022-jp", [27, 36, 66, 70, 124, 75, 92, 56, 108, 27, 40, 66], "日本語"),
            ("gb2312", [196, 227, 186, 195], "你好"),
            ("gbk", [196, 227, 186, 195], "你好"),
            ("big5", [164, 164, 164, 229], "中文"),
            ("shift_jis", [147, 250, 150, 123], "日本"),
            ("euc-jp", [198, 252, 203, 220], "日本"),
            ("euc-kr", [199, 209, 177, 185], "한국"),
            ("ks_c_5601-1987", [199, 209, 177, 185], "한국"),
            ("\"UTF-8\"", bytes("quoted"), "quoted"),
        ]
        for (charset, input, expected) in cases {
            XCTAssertEqual(Charsets.toUTF8(input, charset: charset), expected, charset)
        }
    }

    func testCharsetRepairAndUnknown() {
        XCTAssertEqual(Charsets.toUTF8([0x61, 0xFF, 0x62], charset: "utf-8"), "a\u{FFFD}b")
        XCTAssertEqual(Charsets.toUTF8([0x61, 0x81, 0x62], charset: "windows-1252"), "a\u{FFFD}b", "undefined byte")
        XCTAssertEqual(Charsets.toUTF8([0x61, 0xC4], charset: "gbk"), "a\u{FFFD}", "incomplete at the end")
        XCTAssertNil(Charsets.toUTF8([0x61], charset: "x-no-such-charset"))
        XCTAssertNil(Charsets.toUTF8([0x61], charset: "unknown-8bit"))
        XCTAssertNil(Charsets.toUTF8([0x61], charset: "utf-8//TRANSLIT"), "iconv option syntax refused")
        XCTAssertNil(Charsets.toUTF8([0x61], charset: "../../etc/passwd"))
        XCTAssertNil(Charsets.toUTF8([0x61], charset: ""))
    }

    func testLabelsAsMailMeansThem() {
        // WHATWG Encoding: ISO-8859-1 labels are read as windows-1252; 8-bit bytes under an ASCII
        // label are UTF-8 when they are valid UTF-8, else windows-1252.
        XCTAssertEqual(Charsets.toUTF8([0x80, 0x20, 0x93, 0x61, 0x94], charset: "iso-8859-1"), "€ “a”")
        XCTAssertEqual(Charsets.toUTF8([0x81], charset: "iso-8859-1"), "\u{81}", "undefined in windows-1252: the C1 control")
        XCTAssertEqual(Charsets.toUTF8([0x63, 0x61, 0x66, 0xE9], charset: "us-ascii"), "café")
        XCTAssertEqual(Charsets.toUTF8([0x63, 0x61, 0x66, 0xC3, 0xA9], charset: "us-ascii"), "café")
    }

    // MARK: RFC 2047

    func testEncodedWords() {
        let cases: [(String, String, String)] = [
            ("utf-8 B", "=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=", "Grüße aus München"),
            ("utf-8 Q", "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=", "Grüße aus München"),
            ("iso-8859-1 Q", "=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
            ("windows-1252 Q", "=?windows-1252?Q?=80_100?=", "€ 100"),
            ("iso-2022-jp B", "=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
            ("text around", "Re: =?utf-8?Q?caf=C3=A9?= (fwd)", "Re: café (fwd)"),
            ("adjacent words joined", "=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"),
            ("folded gap joined", "=?utf-8?Q?a?=\r\n =?iso-8859-1?Q?=E9?=", "aé"),
            ("gap before plain text kept", "=?utf-8?Q?a?= b", "a b"),
            ("space inside word via _", "=?utf-8?Q?a_b?=", "a b"),
            ("character split across words", "=?utf-8?B?ww==?= =?utf-8?B?pA==?=", "ä"),
            ("language suffix (RFC 2231 §5)", "=?utf-8*en?Q?hi?=", "hi"),
            ("unknown charset left", "=?x-bogus?Q?abc?= ok", "=?x-bogus?Q?abc?= ok"),
            ("unknown encoding left", "=?utf-8?X?abc?=", "=?utf-8?X?abc?="),
            ("unterminated left", "=?utf-8?Q?abc", "=?utf-8?Q?abc"),
            ("8-bit header tolerated", "Grüße =?utf-8?Q?=C3=A4?=", "Grüße ä"),
            ("no words", "plain = text ?=", "plain = text ?="),
        ]
        for (name, input, expected) in cases {
            XCTAssertEqual(EncodedWords.decode(input), expected, name)
        }
    }

    func testEncodedWordsHostileInputStaysLinear() {
        let s = String(repeating: "=?", count: 50_000)
        XCTAssertEqual(EncodedWords.decode(s), s)
    }

    // MARK: RFC 2231

    func testParameterContinuationsAndCharset() {
        let params = [["charset", "us-ascii"],
                      ["title*1*", "%2A%2A%2Afun%2A%2A%2A%20"], ["title*0*", "us-ascii'en'This%20is%20even%20more%20"],
                      ["title*2", "isn't it!"]]
        XCTAssertEqual(EncodedWords.parameter(params, "title"), "This is even more ***fun*** isn't it!")
        XCTAssertEqual(EncodedWords.parameter(params, "CHARSET"), "us-ascii")
        XCTAssertNil(EncodedWords.parameter(params, "name"))
    }

    func testParameterForms() {
        XCTAssertEqual(EncodedWords.parameter([["filename*", "utf-8''%E2%82%AC%20rates.pdf"]], "filename"), "€ rates.pdf")
        XCTAssertEqual(EncodedWords.parameter([["filename*", "iso-8859-1'de'Gr%FC%DFe.txt"]], "filename"), "Grüße.txt")
        XCTAssertEqual(EncodedWords.parameter([["filename", "plain.txt"], ["filename*", "utf-8''better.txt"]], "filename"), "better.txt",
                       "RFC 2231 form preferred")
        XCTAssertEqual(EncodedWords.parameter([["filename", "=?utf-8?Q?caf=C3=A9.txt?="]], "filename"), "café.txt",
                       "RFC 2047 in a plain value")
        XCTAssertEqual(EncodedWords.parameter([["name*0", "a"], ["name*1", "b"], ["name*3", "d"]], "name"), "ab", "stops at a gap")
        XCTAssertEqual(EncodedWords.parameter([["name*0", "a"], ["name*01", "x"], ["name*1", "b"]], "name"), "ab", "leading zero is no index")
        XCTAssertEqual(EncodedWords.parameter([["name*0*", "utf-8''%C3"], ["name*1*", "%A4"]], "name"), "ä", "bytes joined before charset")
        XCTAssertEqual(EncodedWords.parameter([["name*", "100%"]], "name"), "100%", "malformed escape kept")
    }

    // MARK: RFC 5322 dates

    /// 2024-01-01 10:00:00 UTC.
    static let t0: Int64 = 1_704_103_200

    func testDateForms() {
        let t0 = Self.t0
        let cases: [(String, Int64)] = [
            ("Mon, 1 Jan 2024 10:00:00 +0000", t0),
            ("Mon, 01 Jan 2024 10:00:00 +0000", t0),
            ("1 Jan 2024 10:00:00 +0000", t0),
            ("Mon 1 Jan 2024 10:00:00 +0000", t0),
            ("Mon, 1 Jan 2024 10:00 +0000", t0),
            ("Mon, 1 Jan 2024 12:00:00 +0200", t0),
            ("Mon, 1 Jan 2024 05:00:00 -0500", t0),
            ("Mon, 1 Jan 2024 05:00:00 EST", t0),
            ("Mon, 1 Jan 2024 06:00:00 EDT", t0),
            ("Mon, 1 Jan 2024 04:00:00 CST", t0),
            ("Mon, 1 Jan 2024 05:00:00 CDT", t0),
            ("Mon, 1 Jan 2024 03:00:00 MST", t0),
            ("Mon, 1 Jan 2024 04:00:00 MDT", t0),
            ("Mon, 1 Jan 2024 02:00:00 PST", t0),
            ("Mon, 1 Jan 2024 03:00:00 PDT", t0),
            ("Mon, 1 Jan 2024 10:00:00 GMT", t0),
            ("Mon, 1 Jan 2024 10:00:00 UT", t0),
            ("Mon, 1 Jan 2024 10:00:00 A", t0),                       // military: -0000
            ("Mon, 1 Jan 2024 10:00:00 Z", t0),
            ("Mon, 1 Jan 24 10:00:00 +0000", t0),                     // obs-year 00-49
            ("Fri, 1 Jan 99 10:00:00 +0000", 915_184_800),            // obs-year 50-99
            ("Mon, 1 Jan 124 10:00:00 +0000", t0),                    // 3-digit year + 1900
            ("Mon, 1 Jan 2024 10:00:00 +0000 (UTC)", t0),
            ("Mon, 1 Jan 2024 (a (nested) comment) 10:00:00 +0000", t0),
            ("  Mon,  1   Jan\r\n  2024   10:00:00   +0000  ", t0),
            ("mon, 1 JAN 2024 10:00:00 +0000", t0),
            ("Monday, 1 January 2024 10:00:00 +0000", t0),
            ("Mon Jan  1 10:00:00 2024", t0),                          // asctime
            ("Mon Jan  1 11:00:00 +0100 2024", t0),
            ("Mon, 1-Jan-2024 10:00:00 +0000", t0),
            ("Mon, 1 Jan 2024 11:00:00 GMT+0100", t0),
            ("Mon, 1 Jan 2024 10:00:00", t0),                          // no zone
            ("Mon, 1 Jan 2024 15:30:00 +0530", t0),
            ("Mon, 1 Jan 2024 10:00:60 +0000", t0 + 60),               // leap second
            ("Mon, 1 Jan 2024 01:00:00 +0200", 1_704_063_600),         // the previous day in UTC
            ("Tue, 29 Feb 2000 00:00:00 +0000", 951_782_400),
            ("Thu, 1 Jan 1970 00:00:00 +0000", 0),
            ("1 Jan 2024", t0 - 36_000),                               // date only
        ]
        for (input, expected) in cases {
            XCTAssertEqual(RFC5322Date.parse(input), expected, input)
        }
    }

    func testDateRejects() {
        for input in ["", "garbage", "Mon, 32 Jan 2024 10:00:00 +0000", "Mon, 1 Foo 2024 10:00:00 +0000",
                      "Mon, 1 Jan 2024 25:00:00 +0000", "Mon, 1 Jan 2024 10:61 +0000", "Mon, 1 Jan 2024 10:",
                      "Mon, 1 Jan 12345678901 10:00:00", "Mon, Jan 2024",
                      String(repeating: "(", count: 100_000), String(repeating: "1 ", count: 100_000)] {
            XCTAssertNil(RFC5322Date.parse(input), input)
        }
    }

    func testDateOffset() {
        XCTAssertEqual(RFC5322Date.parseWithOffset("Mon, 1 Jan 2024 12:00:00 +0200")?.offsetMinutes, 120)
        XCTAssertEqual(RFC5322Date.parseWithOffset("Mon, 1 Jan 2024 05:00:00 -0500")?.offsetMinutes, -300)
        XCTAssertEqual(RFC5322Date.parseWithOffset("Mon, 1 Jan 2024 05:00:00 EST")?.offsetMinutes, -300)
        XCTAssertEqual(RFC5322Date.parseWithOffset("Mon, 1 Jan 2024 05:00:00 -0000")?.offsetMinutes, 0)
        XCTAssertEqual(RFC5322Date.daysFromCivil(year: 1970, month: 1, day: 1), 0)
        XCTAssertEqual(RFC5322Date.daysFromCivil(year: 1969, month: 12, day: 31), -1)
    }
}
