// Compact binary payload encoding for RPC messages: big-endian integers, u32-length-prefixed
// strings and bytes. The reader is strict: truncation, bad UTF-8 and trailing bytes are errors.
import NIOCore

public enum WireError: Error, Equatable, CustomStringConvertible {
    case truncated, trailingBytes(Int), badUTF8, badValue(String), frameTooLarge(Int), unknownType(UInt16)
    case versionMismatch(UInt16), unexpectedType(UInt16)
    public var description: String {
        switch self {
        case .truncated: return "truncated payload"
        case .trailingBytes(let n): return "\(n) trailing bytes"
        case .badUTF8: return "invalid UTF-8 string"
        case .badValue(let s): return "bad value: \(s)"
        case .frameTooLarge(let n): return "frame of \(n) bytes exceeds the limit"
        case .unknownType(let t): return "unknown message type \(t)"
        case .versionMismatch(let v): return "protocol major version \(v) not supported"
        case .unexpectedType(let t): return "unexpected message type \(t)"
        }
    }
}

public struct WireWriter {
    public var buffer: ByteBuffer
    public init(_ buffer: ByteBuffer) { self.buffer = buffer }
    public mutating func u8(_ v: UInt8) { buffer.writeInteger(v) }
    public mutating func u16(_ v: UInt16) { buffer.writeInteger(v, endianness: .big) }
    public mutating func u32(_ v: UInt32) { buffer.writeInteger(v, endianness: .big) }
    public mutating func u64(_ v: UInt64) { buffer.writeInteger(v, endianness: .big) }
    public mutating func i64(_ v: Int64) { buffer.writeInteger(v, endianness: .big) }
    public mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }
    public mutating func string(_ s: String) {
        let n = buffer.writeInteger(UInt32(0), endianness: .big)
        let written = buffer.writeString(s)
        buffer.setInteger(UInt32(written), at: buffer.writerIndex - written - n, endianness: .big)
    }
    public mutating func bytes(_ b: ByteBuffer) { u32(UInt32(b.readableBytes)); var c = b; buffer.writeBuffer(&c) }
    public mutating func bytes(_ b: [UInt8]) { u32(UInt32(b.count)); buffer.writeBytes(b) }
    public mutating func strings(_ a: [String]) { list(a) { $0.string($1) } }
    public mutating func list<T>(_ a: [T], _ element: (inout WireWriter, T) -> Void) { u32(UInt32(a.count)); for e in a { element(&self, e) } }
    public mutating func optString(_ s: String?) { bool(s != nil); if let s { string(s) } }
}

public struct WireReader {
    public var buffer: ByteBuffer
    public init(_ buffer: ByteBuffer) { self.buffer = buffer }
    public mutating func u8() throws -> UInt8 { guard let v = buffer.readInteger(as: UInt8.self) else { throw WireError.truncated }; return v }
    public mutating func u16() throws -> UInt16 { guard let v = buffer.readInteger(endianness: .big, as: UInt16.self) else { throw WireError.truncated }; return v }
    public mutating func u32() throws -> UInt32 { guard let v = buffer.readInteger(endianness: .big, as: UInt32.self) else { throw WireError.truncated }; return v }
    public mutating func u64() throws -> UInt64 { guard let v = buffer.readInteger(endianness: .big, as: UInt64.self) else { throw WireError.truncated }; return v }
    public mutating func i64() throws -> Int64 { guard let v = buffer.readInteger(endianness: .big, as: Int64.self) else { throw WireError.truncated }; return v }
    public mutating func bool() throws -> Bool {
        switch try u8() { case 0: return false; case 1: return true; default: throw WireError.badValue("bool") }
    }
    public mutating func string() throws -> String {
        let n = Int(try u32())
        guard n <= buffer.readableBytes else { throw WireError.truncated }
        guard let view = buffer.readBytes(length: n) else { throw WireError.truncated }
        guard let s = String(validating: view, as: UTF8.self) else { throw WireError.badUTF8 }
        return s
    }
    public mutating func bytes() throws -> ByteBuffer {
        let n = Int(try u32())
        guard let b = buffer.readSlice(length: n) else { throw WireError.truncated }
        return b
    }
    /// A u32 count, then `count` elements read by `element`. The count is checked against the
    /// bytes left before anything is allocated: each element takes at least `minElementBytes`,
    /// so a lying count cannot make the reader reserve more than the frame could hold.
    public mutating func list<T>(minElementBytes: Int, max: Int = Int.max, _ element: (inout WireReader) throws -> T) throws -> [T] {
        precondition(minElementBytes > 0)
        let n = Int(try u32())
        guard n <= buffer.readableBytes / minElementBytes else { throw WireError.truncated }
        guard n <= max else { throw WireError.badValue("\(n) elements, at most \(max) allowed") }
        var out: [T] = []; out.reserveCapacity(n)
        for _ in 0..<n { out.append(try element(&self)) }
        return out
    }
    public mutating func strings(max: Int = Int.max) throws -> [String] {
        try list(minElementBytes: WireSize.string, max: max) { try $0.string() }
    }
    /// A raw-value enum, refused when the value is not one of its cases.
    public mutating func enumU8<E: RawRepresentable>(_: E.Type) throws -> E where E.RawValue == UInt8 {
        let v = try u8()
        guard let e = E(rawValue: v) else { throw WireError.badValue("\(E.self) \(v)") }
        return e
    }
    public mutating func enumString<E: RawRepresentable>(_: E.Type) throws -> E where E.RawValue == String {
        let v = try string()
        guard let e = E(rawValue: v) else { throw WireError.badValue("\(E.self) \(v.debugDescription)") }
        return e
    }
    public mutating func optString() throws -> String? { try bool() ? try string() : nil }
    public func finish() throws { if buffer.readableBytes > 0 { throw WireError.trailingBytes(buffer.readableBytes) } }
}

/// Encoded sizes of the smallest possible elements, for `WireReader.list(minElementBytes:)`.
public enum WireSize {
    public static let u8 = 1, u16 = 2, u32 = 4, u64 = 8, bool = 1
    /// An empty string or byte string: its u32 length alone.
    public static let string = 4, bytes = 4
}
