// Real peers as subprocesses (openssl s_client, python3): stdin fed in timed chunks, output
// captured through files, killed after a timeout so a hung peer cannot hang the suite.
import Foundation

public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var output: String { stdout + stderr }
}

/// Runs a real peer with `stdin` fed in `chunks` (a pause before each after the first), output
/// captured through files. Killed after `timeout` seconds.
public func runPeer(_ argv: [String], stdin chunks: [String] = [], pause: Double = 0.3, timeout: Double = 20) throws -> ProcessResult {
    let dir = TempDir()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    _ = FileManager.default.createFile(atPath: dir.file("out"), contents: nil)
    _ = FileManager.default.createFile(atPath: dir.file("err"), contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("out")))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("err")))
    p.standardOutput = out
    p.standardError = err
    let input = Pipe()
    p.standardInput = input
    try p.run()
    let writer = input.fileHandleForWriting
    let feeder = Thread {
        for (i, c) in chunks.enumerated() {
            if i > 0 { Thread.sleep(forTimeInterval: pause) }
            do { try writer.write(contentsOf: Data(c.utf8)) } catch { break }   // the peer exited
        }
        try? writer.close()
    }
    feeder.start()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    p.waitUntilExit()
    killer.cancel()
    try? out.close()
    try? err.close()
    let o = (try? String(contentsOfFile: dir.file("out"), encoding: .utf8)) ?? ""
    let e = (try? String(contentsOfFile: dir.file("err"), encoding: .utf8)) ?? ""
    return ProcessResult(status: p.terminationStatus, stdout: o, stderr: e)
}

/// Runs a Python script (`python3 -c`) with arguments.
public func python(_ script: String, _ args: [String], timeout: Double = 30) throws -> ProcessResult {
    try runPeer(["python3", "-c", script] + args, timeout: timeout)
}

/// `openssl s_client` against 127.0.0.1:port with extra flags.
public func sClient(_ port: Int, _ flags: [String], stdin: [String] = [], timeout: Double = 10) throws -> ProcessResult {
    try runPeer(["openssl", "s_client", "-connect", "127.0.0.1:\(port)"] + flags, stdin: stdin, timeout: timeout)
}
