// Shared main of the libFuzzer targets (fuzz-smtp, fuzz-mime, fuzz-lookup, fuzz-rpc): built with
// -DPOSTERN_LIBFUZZER -sanitize=fuzzer it runs libFuzzer; otherwise it replays the files named.
import Foundation

#if POSTERN_LIBFUZZER
/// libFuzzer's entry for a program that has its own main (compiler-rt FuzzerInterface.h).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The symbol libFuzzer's runtime needs at link time. FuzzReplay.main passes its own callback to
/// LLVMFuzzerRunDriver; reaching this without it means libFuzzer's main ran instead of ours.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    precondition(FuzzReplay.started, "libFuzzer's main ran instead of FuzzReplay.main")
    FuzzReplay.target(FuzzReplay.bytes(data, size))
    return 0
}
#endif

public enum FuzzReplay {
    nonisolated(unsafe) static var target: ([UInt8]) -> Void = { _ in }
    nonisolated(unsafe) static var started = false

    /// libFuzzer build: hands the command line to libFuzzer, which calls `body` per input.
    /// Regular build, `fuzz-X PATH...`: runs `body` once on each file (directories are read one
    /// level deep, in name order; a missing path is skipped). A crash traps inside `body`.
    public static func main(_ name: String, _ body: @escaping ([UInt8]) -> Void) -> Never {
        target = body
        started = true
        #if POSTERN_LIBFUZZER
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzReplay.target(FuzzReplay.bytes(data, size))
            return 0
        })
        #else
        let fm = FileManager.default
        var files: [String] = []
        for arg in CommandLine.arguments.dropFirst() {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: arg, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                files += ((try? fm.contentsOfDirectory(atPath: arg)) ?? []).sorted().map { "\(arg)/\($0)" }
            } else {
                files.append(arg)
            }
        }
        for f in files {
            guard let d = fm.contents(atPath: f) else { continue }
            FileHandle.standardError.write(Data("\(name): \(f)\n".utf8))
            body(Array(d))
        }
        print("\(name): replayed \(files.count) inputs, no crash")
        exit(0)
        #endif
    }

    /// Copies libFuzzer's (pointer, size) into an array; a nil pointer is the empty input.
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }
}
