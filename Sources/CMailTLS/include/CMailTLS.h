// C helpers for MailTLS over the system OpenSSL 3: the macros and variadic calls Swift cannot
// import, PEM loading from memory, self-signed certificate generation and X.509 inspection.
// Every function is safe to call from any thread; strings are copied into caller buffers.
#ifndef CMAILTLS_H
#define CMAILTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// MARK: errors

/// Moves this thread's OpenSSL error queue into `buf` as "reason; reason" (NUL-terminated,
/// truncated to `cap`) and empties the queue. Returns the number of bytes written (0: no error).
size_t mtls_drain_errors(char *buf, size_t cap);
/// Empties this thread's OpenSSL error queue.
void mtls_clear_errors(void);

// MARK: SSL_CTX settings (macros in ssl.h / tls1.h)

/// SSL_CTX_new(TLS_server_method()) or TLS_client_method().
SSL_CTX *mtls_ctx_new(int server);
/// SSL_CTX_set_min_proto_version / SSL_CTX_set_max_proto_version (0 = no maximum). 1 on success.
int mtls_ctx_set_proto_range(SSL_CTX *ctx, int min_version, int max_version);
/// Options every Postern context gets: no renegotiation (RFC 5746 is moot: we never renegotiate),
/// no compression (CRIME), server cipher preference when `prefer_server`, tickets off when !tickets.
void mtls_ctx_set_postern_options(SSL_CTX *ctx, int prefer_server, int tickets);
/// Server-side session cache on/off with its size and session timeout (seconds).
void mtls_ctx_set_session_cache(SSL_CTX *ctx, int on, long size, long timeout_seconds);
/// SSL_CTX_set1_groups_list. 1 on success.
int mtls_ctx_set_groups(SSL_CTX *ctx, const char *groups);
/// SSL_CTX_set_tlsext_ticket_keys with 80 bytes (name 16, HMAC 32, AES 32). 1 on success.
int mtls_ctx_set_ticket_keys(SSL_CTX *ctx, const unsigned char *keys, size_t len);
/// Rotating session-ticket keys (RFC 5077 §5.5, RFC 8446 §4.6.1): every `lifetime` seconds a
/// new key (name 16, HMAC 32, AES 32) derived from `secret` and the epoch ⌊(now + offset) /
/// lifetime⌋ encrypts new tickets; the previous epoch's key still decrypts (and renews) them;
/// older tickets fall back to a full handshake. Every process with the same secret derives the
/// same keys. `offset` shifts the clock (tests). 1 on success.
int mtls_ctx_set_ticket_secret(SSL_CTX *ctx, const unsigned char *secret, size_t len, long lifetime, long offset);
/// The 80 key bytes for `epoch` (HMAC-SHA256(secret, "postern ticket key" || epoch || i), i = 1..3).
int mtls_ticket_key_for_epoch(const unsigned char *secret, size_t len, int64_t epoch, unsigned char out[80]);
/// SSL_CTX_set_dh_auto(ctx, 1): built-in DH groups matched to the key size for DHE suites.
void mtls_ctx_set_dh_auto(SSL_CTX *ctx);
/// SNI callback (RFC 6066 §3): called during the ClientHello with the connection and `arg`.
typedef int (*mtls_servername_cb)(SSL *ssl, int *alert, void *arg);
void mtls_ctx_set_servername_callback(SSL_CTX *ctx, mtls_servername_cb cb, void *arg);
/// Loads a PEM certificate chain (leaf first, then intermediates) from memory into `ctx`. 1 on success.
int mtls_ctx_use_chain_pem(SSL_CTX *ctx, const char *pem, size_t len);
/// Loads an unencrypted PEM private key from memory into `ctx` (never prompts for a
/// passphrase) and checks it matches the certificate. 1 ok, 0 unreadable, -1 mismatch.
int mtls_ctx_use_key_pem(SSL_CTX *ctx, const char *pem, size_t len);
/// Client side: verify the peer against `ca_file` (NULL: the system default store). 1 on success.
int mtls_ctx_set_verify(SSL_CTX *ctx, int verify, const char *ca_file);

// MARK: connections

/// A new SSL object on two memory BIOs (no socket BIO): bytes from the network are written to
/// *rbio, bytes for the network are read from *wbio. Server or client state is set.
SSL *mtls_ssl_new(SSL_CTX *ctx, int server, int release_buffers, BIO **rbio, BIO **wbio);
/// An empty memory BIO that reports "retry" (never EOF) when read empty.
BIO *mtls_bio_new_mem(void);
/// Replaces the connection's read (`read_side` 1) or write BIO by a new empty memory BIO,
/// freeing the old one and the buffer it grew to; only while the old one holds no byte.
/// Returns the new BIO, or NULL (nothing changed: bytes pending, or out of memory).
BIO *mtls_ssl_renew_bio(SSL *ssl, int read_side);
/// SSL_set_tlsext_host_name (client SNI) and, when `verify_host`, RFC 6125 host name checking.
int mtls_ssl_set_server_name(SSL *ssl, const char *name, int verify_host);
/// Name of the negotiated key-exchange group ("X25519"), or NULL.
const char *mtls_ssl_group_name(SSL *ssl);
/// The cipher's OpenSSL name, IANA name and secret bits; names stay valid while `ssl` lives.
const char *mtls_ssl_cipher_name(const SSL *ssl);
const char *mtls_ssl_cipher_standard_name(const SSL *ssl);
int mtls_ssl_cipher_bits(const SSL *ssl);
/// The peer's certificate (not owned), or NULL.
X509 *mtls_ssl_peer_certificate(const SSL *ssl);
/// X509_V_OK (0) or the verify error; `buf` gets its description.
long mtls_ssl_verify_result(const SSL *ssl, char *buf, size_t cap);

// MARK: certificates

/// Writes a self-signed ECDSA P-256 certificate for `hostname` (CN and subjectAltName; an IP
/// address becomes an IP SAN) valid `days` days. The key file is created 0600, the certificate
/// 0644, both with O_EXCL and owned by uid:gid when uid >= 0. On failure nothing is left behind
/// and `err` says why. 1 on success, 0 on failure.
int mtls_generate_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                              int days, long uid, long gid, char *err, size_t errcap);
/// Parses the first certificate of a PEM buffer; free with X509_free. NULL if none.
X509 *mtls_x509_from_pem(const char *pem, size_t len);
/// The certificate loaded in `ctx` (not owned), or NULL.
X509 *mtls_ctx_certificate(SSL_CTX *ctx);
/// Subject / issuer in RFC 2253 form. Like snprintf: returns the full length.
size_t mtls_x509_subject(X509 *x, char *buf, size_t cap);
size_t mtls_x509_issuer(X509 *x, char *buf, size_t cap);
/// subjectAltName entries, one per line: DNS names as is, IP addresses as text.
size_t mtls_x509_sans(X509 *x, char *buf, size_t cap);
/// Validity bounds as seconds since the epoch. 1 on success.
int mtls_x509_validity(X509 *x, int64_t *not_before, int64_t *not_after);
/// Serial number and SHA-256 fingerprint as colon-free upper-case hex.
size_t mtls_x509_serial_hex(X509 *x, char *buf, size_t cap);
size_t mtls_x509_sha256_hex(X509 *x, char *buf, size_t cap);
/// Public key kind, e.g. "EC P-256", "RSA 2048", "ED25519".
size_t mtls_x509_key_description(X509 *x, char *buf, size_t cap);

#endif
