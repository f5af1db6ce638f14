// smtpd: SMTP on 25 (mta), 587 (submission) and 465 (smtps) (DESIGN §4).
// Security: uid postern, no capabilities, NoNewPrivs, not dumpable; TLS keys read before the
// drop; mail reaches the store only over its RPC connection with role smtpd, and remote
// recipients are queued only under a session the store created after AUTH on that connection.
import SMTPServer

SMTPDWorker.run()
