// Keeps a session's long-lived task shallow (issue 11 point 5): Swift's task allocator keeps
// every slab a task's deepest call chain needed until the task ends, so a SELECT or FETCH run
// on the session's own task would leave its peak async stack (tens of KiB) behind for as long
// as the connection idles. Work that may go deep runs in a task of its own, awaited at once,
// and IDLE waits in the run loop itself (`idling`, `idleInput`), not inside its command.

extension IMAPSession {
    /// Runs `body` in a new task and waits for it: the same order and effects as calling it
    /// directly, but the task-allocator slabs it needs are freed when it returns.
    func shallow(_ body: @escaping @Sendable () async -> Void) async {
        await Task { await body() }.value
    }
}
