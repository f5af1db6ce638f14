// store: the only process that opens the data directory (DESIGN §3).
// Security: uid postern-store, no capabilities, NoNewPrivs; reaches only the data dir and
// the RPC sockets the master hands it; workers cannot open its files.
import StoreServer

StoreMain.run()
