// lmtpd: LMTP delivery (RFC 2033) on inherited listeners (DESIGN §4).
// Security: uid postern, no capabilities, NoNewPrivs, not dumpable; no access to the data
// dir — mail reaches the store only over its RPC connection with role lmtpd.
import SMTPServer

LMTPWorker.run()
