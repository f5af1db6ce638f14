// postern: the admin CLI. Security: talks only to the master's root-only control socket.
import AdminCLI

Postern.main()
