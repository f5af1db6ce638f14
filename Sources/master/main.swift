// master: the root process of the Postern daemon set (DESIGN §1).
// Security: runs as root to bind listeners and spawn; holds no mail data; never reads
// client bytes. Workers and the store drop to their own users right after spawn.
import MasterCore

MasterMain.run(arguments: CommandLine.arguments)
