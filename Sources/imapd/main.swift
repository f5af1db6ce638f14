// imapd: IMAP on 143 (STARTTLS) and 993 (implicit TLS) (DESIGN §4). Placeholder until the
// worker lands.
print("imapd: not built yet")
