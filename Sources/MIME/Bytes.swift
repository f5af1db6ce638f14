// Unchecked read-only view of the message bytes plus the byte searches the parser needs (memchr).
// Relies on the caller keeping the buffer alive and unmodified for the duration of one parse.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MailSyntax

struct Bytes {
    let base: UnsafeRawPointer
    let count: Int

    @inline(__always) subscript(i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    /// The same bytes as a buffer, for MailSyntax's scanners.
    var raw: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Index of the first `byte` in `[from, to)`, or nil.
    @inline(__always) func find(_ byte: UInt8, from: Int, to: Int) -> Int? {
        guard from < to, let p = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(p))
    }

    /// Number of LF bytes in `[from, to)`.
    func countLF(from: Int, to: Int) -> Int {
        var n = 0
        var i = from
        while let lf = find(ASCII.lf, from: i, to: to) {
            n += 1
            i = lf + 1
        }
        return n
    }

    /// Whether `other` occurs at offset `at` (caller guarantees `at + other.count <= count`).
    @inline(__always) func matches(at: Int, _ other: [UInt8]) -> Bool {
        other.withUnsafeBytes { o in
            guard let ob = o.baseAddress else { return true }
            return memcmp(base + at, ob, o.count) == 0
        }
    }

    /// Copy of `[from, to)` as an array (for small header values only; bodies are never copied).
    func array(_ from: Int, _ to: Int) -> [UInt8] {
        guard from < to else { return [] }
        return Array(UnsafeRawBufferPointer(start: base + from, count: to - from))
    }
}

extension String {
    /// Lossy UTF-8 decoding (invalid sequences become U+FFFD).
    @inline(__always) init<C: Collection>(lossyUTF8 bytes: C) where C.Element == UInt8 {
        self = String(decoding: bytes, as: UTF8.self)
    }
}

/// Drops leading and trailing SP/HTAB.
func trimWSP(_ a: [UInt8]) -> ArraySlice<UInt8> {
    var lo = a.startIndex, hi = a.endIndex
    while lo < hi && ASCII.isWSP(a[lo]) { lo += 1 }
    while hi > lo && ASCII.isWSP(a[hi - 1]) { hi -= 1 }
    return a[lo..<hi]
}

func lowercasedASCII<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    String(decoding: bytes.map(ASCII.lower), as: UTF8.self)
}
