// A task executor preference on a NIO event loop: a task (and the default actors and nonisolated
// async functions it calls) runs its jobs on the loop's thread, so awaiting a channel on that
// same loop resumes without a thread hop. Jobs are only ever enqueued, never run inline.
import NIOCore

public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let loop: EventLoop
    public init(_ loop: EventLoop) { self.loop = loop }
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
