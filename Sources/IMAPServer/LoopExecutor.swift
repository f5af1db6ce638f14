// A connection's event loop as the task executor of its session (SE-0417): the session's code
// runs on the loop that reads and writes its socket, so a command costs no hop to the global
// executor's threads and back (each a thread wake-up, slow on a loaded machine).
import NIOCore

final class LoopExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
