// The master's side of the control pipes, on real pipes: the byte each signal writes, a child
// with no pipe, a child that has exited (EPIPE), a wedged child (full pipe), and reaping.
import XCTest
import Foundation
import MailPrivsep
@testable import MasterCore

final class ControlPipesTests: XCTestCase {
    func readAll(_ fd: Int32) -> [UInt8] {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { return out }
            out += buf[0..<n]
        }
    }

    func testSignalsBecomeBytesInTheChildsPipe() throws {
        let p = try XCTUnwrap(ControlPipes.make())
        defer { close(p.read) }
        XCTAssertEqual(fcntl(p.read, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        XCTAssertEqual(fcntl(p.write, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        XCTAssertEqual(fcntl(p.read, F_GETFL) & O_NONBLOCK, 0, "the child's reader blocks")
        var pipes = ControlPipes()
        pipes.adopt(p.write, for: 4242)
        for sig in [SIGTERM, SIGHUP, SIGKILL] { XCTAssertEqual(pipes.send(sig, to: 4242), .written) }
        XCTAssertEqual(readAll(p.read), Array("THK".utf8))
        XCTAssertEqual(ControlPipe.signals(in: Array("THK".utf8)), [SIGTERM, SIGHUP, SIGKILL])
        // No byte for this signal, no pipe for that pid: the master uses kill(2).
        XCTAssertEqual(pipes.send(SIGUSR1, to: 4242), .noPipe)
        XCTAssertEqual(pipes.send(SIGTERM, to: 4243), .noPipe)
        pipes.remove(4242)
        XCTAssertEqual(pipes.count, 0)
        XCTAssertEqual(pipes.send(SIGTERM, to: 4242), .noPipe)
    }

    func testExitedChildIsGone() throws {
        signal(SIGPIPE, SIG_IGN)   // as the master does
        let p = try XCTUnwrap(ControlPipes.make())
        var pipes = ControlPipes()
        pipes.adopt(p.write, for: 7)
        close(p.read)   // the child exited
        XCTAssertEqual(pipes.send(SIGTERM, to: 7), .gone)
        pipes.remove(7)
    }

    func testWedgedChildFillsThePipeWithoutBlockingTheMaster() throws {
        let p = try XCTUnwrap(ControlPipes.make())
        defer { close(p.read) }
        var pipes = ControlPipes()
        pipes.adopt(p.write, for: 9)
        var written = 0
        while pipes.send(SIGTERM, to: 9) == .written { written += 1; if written > 1 << 22 { break } }
        XCTAssertEqual(pipes.send(SIGKILL, to: 9), .full)
        XCTAssertGreaterThan(written, 0)
        XCTAssertEqual(readAll(p.read).count, written)
        XCTAssertEqual(pipes.send(SIGKILL, to: 9), .written, "room again once the child reads")
        pipes.remove(9)
    }

    func testAdoptingAPidAgainClosesTheOldEnd() throws {
        let a = try XCTUnwrap(ControlPipes.make()), b = try XCTUnwrap(ControlPipes.make())
        defer { close(a.read); close(b.read) }
        var pipes = ControlPipes()
        pipes.adopt(a.write, for: 5)
        pipes.adopt(b.write, for: 5)
        XCTAssertEqual(fcntl(a.write, F_GETFD), -1, "the replaced write end is closed")
        XCTAssertEqual(pipes.send(SIGTERM, to: 5), .written)
        XCTAssertEqual(readAll(b.read), Array("T".utf8))
        pipes.remove(5)
    }
}
