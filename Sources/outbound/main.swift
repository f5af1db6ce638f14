// outbound: the queue runner that sends queued mail to other hosts (DESIGN §1, §4).
// Security: uid postern, no capabilities, NoNewPrivs, not dumpable, no listener; DKIM keys, the
// relay password and TLS trust anchors read before the drop; the store is reached only over its
// RPC connection with role outbound (claim, read a queued body, report, watch the queue).
import OutboundServer

OutboundWorker.run(makeQueue: OutboundWorker.storeQueue)
