// outbound: the queue runner that sends queued mail to other hosts (DESIGN §1, §4). Not built
// yet: the contract is in Sources/OutboundServer/OutboundQueue.swift.
import Foundation
FileHandle.standardError.write("outbound: not built yet\n".data(using: .utf8)!)
exit(1)
