// The child's side of the control pipe: byte ↔ signal mapping, the contract's fd number, and
// the reader thread on a real pipe (signals handed to an injected `deliver`, never to ourselves).
import XCTest
import Foundation
@testable import MailPrivsep

final class ControlPipeTests: XCTestCase {
    func testByteSignalMapping() {
        let table: [(byte: UInt8, signal: Int32)] = [(UInt8(ascii: "T"), SIGTERM), (UInt8(ascii: "K"), SIGKILL), (UInt8(ascii: "H"), SIGHUP)]
        for (byte, sig) in table {
            XCTAssertEqual(ControlPipe.Command(rawValue: byte)?.signal, sig)
            XCTAssertEqual(ControlPipe.Command(signal: sig)?.rawValue, byte)
        }
        XCTAssertEqual(ControlPipe.Command.allCases.count, table.count)
        // Signals with no byte are not sent down the pipe (the master falls back to kill(2)).
        for sig in [SIGINT, SIGUSR1, SIGCHLD, 0] { XCTAssertNil(ControlPipe.Command(signal: sig)) }
        // Unknown bytes are skipped, order is kept.
        XCTAssertEqual(ControlPipe.signals(in: Array("TxH\0K".utf8)), [SIGTERM, SIGHUP, SIGKILL])
        XCTAssertEqual(ControlPipe.signals(in: [UInt8]()), [])
    }

    func testContractNamesTheFDAfterTheListeners() {
        XCTAssertEqual(FDContract.controlPipeFD(listeners: 0), 4)   // the store
        XCTAssertEqual(FDContract.controlPipeFD(listeners: 3), 7)
        XCTAssertEqual(FDContract.controlPipe(environment: ["POSTERN_CONTROL_FD": "6"]), 6)
        for bad in ["", "x", "3", "-1", "2"] { XCTAssertNil(FDContract.controlPipe(environment: ["POSTERN_CONTROL_FD": bad]), bad) }
        XCTAssertNil(FDContract.controlPipe(environment: [:]))
    }

    /// Collects delivered signals across threads.
    final class Delivered: @unchecked Sendable {
        let lock = NSLock(); var signals: [Int32] = []
        let changed = DispatchSemaphore(value: 0)
        func add(_ s: Int32) { lock.lock(); signals.append(s); lock.unlock(); changed.signal() }
        func wait(for n: Int) -> [Int32] {
            while true {
                lock.lock(); let got = signals; lock.unlock()
                if got.count >= n { return got }
                if changed.wait(timeout: .now() + 10) == .timedOut { return got }
            }
        }
    }

    func testReaderDeliversEachByteThenMasterGoneAtEOF() {
        var p: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&p), 0)
        let got = Delivered()
        ControlPipe.follow(fd: p[0], deliver: got.add)
        for chunk in ["T", "H", "?K"] {
            let bytes = Array(chunk.utf8)
            XCTAssertEqual(write(p[1], bytes, bytes.count), bytes.count)
        }
        XCTAssertEqual(got.wait(for: 3), [SIGTERM, SIGHUP, SIGKILL])
        close(p[1])   // the master is gone
        XCTAssertEqual(got.wait(for: 4), [SIGTERM, SIGHUP, SIGKILL, ControlPipe.masterGoneSignal])
        XCTAssertEqual(ControlPipe.masterGoneSignal, SIGTERM)
    }
}
