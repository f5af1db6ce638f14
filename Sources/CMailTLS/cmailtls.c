// C helpers for MailTLS: OpenSSL macro wrappers, PEM loading from memory, self-signed
// certificate generation, X.509 inspection and rotating ticket keys. No global state but one
// ex_data index (set once); OpenSSL 3 is thread-safe.
#include "CMailTLS.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>

// MARK: errors

size_t mtls_drain_errors(char *buf, size_t cap) {
    size_t used = 0;
    if (cap == 0) { ERR_clear_error(); return 0; }
    buf[0] = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        const char *reason = ERR_reason_error_string(e);
        const char *lib = ERR_lib_error_string(e);
        if (reason != NULL)
            snprintf(one, sizeof one, "%s%s%s", lib ? lib : "", lib ? ": " : "", reason);
        else
            ERR_error_string_n(e, one, sizeof one);
        int n = snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", one);
        if (n < 0) break;
        used += (size_t)n;
        if (used >= cap - 1) { used = cap - 1; buf[used] = 0; ERR_clear_error(); break; }
    }
    return used;
}

void mtls_clear_errors(void) { ERR_clear_error(); }

// MARK: SSL_CTX settings

SSL_CTX *mtls_ctx_new(int server) {
    return SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
}

int mtls_ctx_set_proto_range(SSL_CTX *ctx, int min_version, int max_version) {
    if (!SSL_CTX_set_min_proto_version(ctx, min_version)) return 0;
    if (!SSL_CTX_set_max_proto_version(ctx, max_version)) return 0;
    return 1;
}

void mtls_ctx_set_postern_options(SSL_CTX *ctx, int prefer_server, int tickets) {
    uint64_t on = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (prefer_server) on |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!tickets) on |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, on);
    // Client-initiated renegotiation stays off too (OpenSSL 3 default; made explicit).
    SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
}

void mtls_ctx_set_session_cache(SSL_CTX *ctx, int on, long size, long timeout_seconds) {
    if (on) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, size);
        static const unsigned char sid[] = "postern";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (timeout_seconds > 0) SSL_CTX_set_timeout(ctx, timeout_seconds);
}

int mtls_ctx_set_groups(SSL_CTX *ctx, const char *groups) {
    return (int)SSL_CTX_set1_groups_list(ctx, groups);
}

int mtls_ctx_set_ticket_keys(SSL_CTX *ctx, const unsigned char *keys, size_t len) {
    if (len != 80) return 0;
    return (int)SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)keys, (long)len);
}

// Rotating ticket keys: the secret lives in the SSL_CTX's ex_data, freed with it.
struct mtls_ticket_state { unsigned char secret[80]; size_t len; long lifetime, offset; };

static void ticket_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (ptr) { OPENSSL_cleanse(ptr, sizeof(struct mtls_ticket_state)); OPENSSL_free(ptr); }
}

static int ticket_ex_index = -1;
static CRYPTO_ONCE ticket_once = CRYPTO_ONCE_STATIC_INIT;
static void ticket_index_init(void) {
    ticket_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ticket_state_free);
}
static int ticket_index(void) {
    return CRYPTO_THREAD_run_once(&ticket_once, ticket_index_init) ? ticket_ex_index : -1;
}

int mtls_ticket_key_for_epoch(const unsigned char *secret, size_t len, int64_t epoch, unsigned char out[80]) {
    static const char label[] = "postern ticket key";
    unsigned char block[32], msg[sizeof label - 1 + 8 + 1];
    memcpy(msg, label, sizeof label - 1);
    for (int i = 0; i < 8; i++) msg[sizeof label - 1 + i] = (unsigned char)((uint64_t)epoch >> (56 - 8 * i));
    for (int i = 0; i < 3; i++) {
        msg[sizeof msg - 1] = (unsigned char)(i + 1);
        unsigned int n = 0;
        if (HMAC(EVP_sha256(), secret, (int)len, msg, sizeof msg, block, &n) == NULL || n != 32) return 0;
        memcpy(out + 32 * i, block, i == 2 ? 16 : 32);
    }
    OPENSSL_cleanse(block, sizeof block);
    return 1;
}

static int64_t ticket_epoch(const struct mtls_ticket_state *st) {
    int64_t t = (int64_t)time(NULL) + st->offset;
    return t >= 0 ? t / st->lifetime : -((-t + st->lifetime - 1) / st->lifetime);
}

// OpenSSL's ticket key callback: enc = 1 issues a ticket with the current key; enc = 0 looks the
// key name up among the current and previous epochs (2: decrypted, but issue a new ticket).
static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc) {
    const struct mtls_ticket_state *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_index());
    if (st == NULL) return -1;
    int64_t now = ticket_epoch(st);
    unsigned char key[80];
    int result = 0;
    for (int back = 0; back < (enc ? 1 : 2); back++) {
        if (!mtls_ticket_key_for_epoch(st->secret, st->len, now - back, key)) { result = -1; break; }
        if (!enc && memcmp(name, key, 16) != 0) continue;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key + 16, 32),
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end(),
        };
        if (enc) {
            memcpy(name, key, 16);
            if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1
                || EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key + 48, iv) != 1) { result = -1; break; }
        } else if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key + 48, iv) != 1) { result = -1; break; }
        result = EVP_MAC_CTX_set_params(hctx, params) == 1 ? (back == 0 ? 1 : 2) : -1;
        break;
    }
    OPENSSL_cleanse(key, sizeof key);
    return result;
}

int mtls_ctx_set_ticket_secret(SSL_CTX *ctx, const unsigned char *secret, size_t len, long lifetime, long offset) {
    if (len == 0 || len > 80 || lifetime <= 0) return 0;
    int index = ticket_index();
    if (index < 0) return 0;
    struct mtls_ticket_state *st = OPENSSL_zalloc(sizeof *st);
    if (st == NULL) return 0;
    memcpy(st->secret, secret, len);
    st->len = len; st->lifetime = lifetime; st->offset = offset;
    if (!SSL_CTX_set_ex_data(ctx, index, st)) { ticket_state_free(NULL, st, NULL, 0, 0, NULL); return 0; }
    return (int)SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
}

void mtls_ctx_set_dh_auto(SSL_CTX *ctx) { SSL_CTX_set_dh_auto(ctx, 1); }

void mtls_ctx_set_servername_callback(SSL_CTX *ctx, mtls_servername_cb cb, void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}

// A passphrase callback that never prompts: encrypted keys fail to load instead of blocking.
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

// After reading PEM objects to the end of a buffer, OpenSSL leaves "no start line" queued.
static void forget_pem_eof(void) {
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ERR_clear_error();
}

int mtls_ctx_use_chain_pem(SSL_CTX *ctx, const char *pem, size_t len) {
    if (len > INT32_MAX) return 0;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL) return 0;
    int ok = 0;
    X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL);
    if (leaf == NULL) goto out;
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) { X509_free(leaf); goto out; }
    X509_free(leaf);
    SSL_CTX_clear_chain_certs(ctx);
    X509 *ca;
    while ((ca = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
        if (!SSL_CTX_add0_chain_cert(ctx, ca)) { X509_free(ca); goto out; }
    }
    forget_pem_eof();
    ok = ERR_peek_error() == 0;
out:
    BIO_free(b);
    return ok;
}

int mtls_ctx_use_key_pem(SSL_CTX *ctx, const char *pem, size_t len) {
    if (len > INT32_MAX) return 0;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL) return 0;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (k == NULL) return 0;
    int r = SSL_CTX_use_PrivateKey(ctx, k);
    EVP_PKEY_free(k);
    if (r != 1) {
        // OpenSSL refuses a key whose public half differs from the certificate's here.
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH) return -1;
        return 0;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) return -1;
    return 1;
}

int mtls_ctx_set_verify(SSL_CTX *ctx, int verify, const char *ca_file) {
    if (!verify) { SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); return 1; }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL) return SSL_CTX_load_verify_locations(ctx, ca_file, NULL) == 1;
    return SSL_CTX_set_default_verify_paths(ctx) == 1;
}

// MARK: connections

BIO *mtls_bio_new_mem(void) {
    BIO *b = BIO_new(BIO_s_mem());
    // An empty memory BIO reports "retry" (not EOF), which SSL turns into WANT_READ.
    if (b != NULL) BIO_set_mem_eof_return(b, -1);
    return b;
}

BIO *mtls_ssl_renew_bio(SSL *ssl, int read_side) {
    BIO *old = read_side ? SSL_get_rbio(ssl) : SSL_get_wbio(ssl);
    if (old == NULL || BIO_ctrl_pending(old) != 0) return NULL;
    BIO *b = mtls_bio_new_mem();
    if (b == NULL) return NULL;
    if (read_side) SSL_set0_rbio(ssl, b); else SSL_set0_wbio(ssl, b);   // frees `old`
    return b;
}

SSL *mtls_ssl_new(SSL_CTX *ctx, int server, int release_buffers, BIO **rbio, BIO **wbio) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    BIO *r = mtls_bio_new_mem();
    BIO *w = mtls_bio_new_mem();
    if (r == NULL || w == NULL) { BIO_free(r); BIO_free(w); SSL_free(ssl); return NULL; }
    SSL_set_bio(ssl, r, w);  // ssl owns both BIOs now
    if (release_buffers) SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    if (server) SSL_set_accept_state(ssl); else SSL_set_connect_state(ssl);
    *rbio = r;
    *wbio = w;
    return ssl;
}

int mtls_ssl_set_server_name(SSL *ssl, const char *name, int verify_host) {
    if (!SSL_set_tlsext_host_name(ssl, name)) return 0;
    if (verify_host && SSL_set1_host(ssl, name) != 1) return 0;
    return 1;
}

const char *mtls_ssl_group_name(SSL *ssl) {
    int nid = SSL_get_negotiated_group(ssl);
    if (nid == 0 || nid == NID_undef) return NULL;
    return SSL_group_to_name(ssl, nid);
}

const char *mtls_ssl_cipher_name(const SSL *ssl) {
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    return c ? SSL_CIPHER_get_name(c) : NULL;
}

const char *mtls_ssl_cipher_standard_name(const SSL *ssl) {
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    return c ? SSL_CIPHER_standard_name(c) : NULL;
}

int mtls_ssl_cipher_bits(const SSL *ssl) {
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    return c ? SSL_CIPHER_get_bits(c, NULL) : 0;
}

X509 *mtls_ssl_peer_certificate(const SSL *ssl) { return SSL_get0_peer_certificate(ssl); }

long mtls_ssl_verify_result(const SSL *ssl, char *buf, size_t cap) {
    long r = SSL_get_verify_result(ssl);
    if (cap > 0) snprintf(buf, cap, "%s", X509_verify_cert_error_string(r));
    return r;
}

// MARK: certificate generation

static void set_err(char *err, size_t cap, const char *what) {
    if (cap == 0) return;
    char detail[512];
    size_t n = mtls_drain_errors(detail, sizeof detail);
    if (n > 0) snprintf(err, cap, "%s (%s)", what, detail);
    else if (errno != 0) snprintf(err, cap, "%s (%s)", what, strerror(errno));
    else snprintf(err, cap, "%s", what);
}

// Creates `path` exclusively with `mode`, hands it to uid:gid, and writes it with `writer`.
static int write_new_file(const char *path, mode_t mode, long uid, long gid,
                          int (*writer)(FILE *, void *), void *obj, char *err, size_t cap) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        char what[600]; snprintf(what, sizeof what, "cannot create %s", path);
        set_err(err, cap, what); return 0;
    }
    char what[600];
    if (fchmod(fd, mode) != 0) { snprintf(what, sizeof what, "cannot chmod %s", path); goto fail; }
    if (uid >= 0 && fchown(fd, (uid_t)uid, (gid_t)(gid >= 0 ? gid : -1)) != 0) {
        snprintf(what, sizeof what, "cannot chown %s to %ld:%ld", path, uid, gid); goto fail;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) { snprintf(what, sizeof what, "cannot open %s", path); goto fail; }
    if (!writer(f, obj) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(what, sizeof what, "cannot write %s", path);
        fclose(f); unlink(path); set_err(err, cap, what); return 0;
    }
    if (fclose(f) != 0) { snprintf(what, sizeof what, "cannot write %s", path); unlink(path); set_err(err, cap, what); return 0; }
    return 1;
fail:
    set_err(err, cap, what);
    close(fd);
    unlink(path);
    return 0;
}

static int write_key(FILE *f, void *k) { return PEM_write_PrivateKey(f, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL); }
static int write_cert(FILE *f, void *x) { return PEM_write_X509(f, (X509 *)x); }

static int add_ext(X509 *x, int nid, const char *value) {
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL) return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

int mtls_generate_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                              int days, long uid, long gid, char *err, size_t errcap) {
    errno = 0;
    ERR_clear_error();
    int ok = 0;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    GENERAL_NAMES *sans = NULL;
    BIGNUM *bn = NULL;
    if (hostname == NULL || hostname[0] == 0) { set_err(err, errcap, "empty host name"); return 0; }

    pkey = EVP_EC_gen("P-256");
    if (pkey == NULL) { set_err(err, errcap, "cannot generate an ECDSA P-256 key"); goto out; }
    x = X509_new();
    if (x == NULL || !X509_set_version(x, X509_VERSION_3)) { set_err(err, errcap, "cannot create a certificate"); goto out; }

    // RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; 127 random bits.
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) { set_err(err, errcap, "no randomness for the serial number"); goto out; }
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) { set_err(err, errcap, "cannot set the serial number"); goto out; }

    if (X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL) { set_err(err, errcap, "cannot set the validity"); goto out; }
    if (!X509_set_pubkey(x, pkey)) { set_err(err, errcap, "cannot set the public key"); goto out; }

    X509_NAME *name = X509_get_subject_name(x);
    char cn[65];
    snprintf(cn, sizeof cn, "%s", hostname);  // RFC 5280 ub-common-name: 64 characters
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Postern self-signed", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
        !X509_set_issuer_name(x, name)) { set_err(err, errcap, "cannot set the subject"); goto out; }

    // subjectAltName (RFC 5280 §4.2.1.6), built directly so no character of the name is parsed.
    // No keyUsage extension: without keyCertSign a client could not pin this certificate as its
    // own trust anchor (OpenSSL would not consider it self-issued).
    sans = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (sans == NULL || gn == NULL) { GENERAL_NAME_free(gn); set_err(err, errcap, "out of memory"); goto out; }
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(hostname);
    ERR_clear_error();
    if (ip != NULL) {
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (dns == NULL || !ASN1_STRING_set(dns, hostname, -1)) { ASN1_IA5STRING_free(dns); GENERAL_NAME_free(gn); set_err(err, errcap, "bad host name"); goto out; }
        GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    }
    if (!sk_GENERAL_NAME_push(sans, gn)) { GENERAL_NAME_free(gn); set_err(err, errcap, "out of memory"); goto out; }
    if (!X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0) ||
        !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth") ||
        !add_ext(x, NID_subject_key_identifier, "hash")) { set_err(err, errcap, "cannot add extensions"); goto out; }
    if (X509_sign(x, pkey, EVP_sha256()) == 0) { set_err(err, errcap, "cannot sign the certificate"); goto out; }

    if (!write_new_file(key_path, 0600, uid, gid, write_key, pkey, err, errcap)) goto out;
    if (!write_new_file(cert_path, 0644, uid, gid, write_cert, x, err, errcap)) { unlink(key_path); goto out; }
    ok = 1;
out:
    GENERAL_NAMES_free(sans);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ok;
}

// MARK: inspection

X509 *mtls_x509_from_pem(const char *pem, size_t len) {
    if (len > INT32_MAX) return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL) return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    return x;
}

X509 *mtls_ctx_certificate(SSL_CTX *ctx) { return SSL_CTX_get0_certificate(ctx); }

// Copies a memory BIO's contents into buf like snprintf.
static size_t bio_to_buf(BIO *b, char *buf, size_t cap) {
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n < 0) n = 0;
    if (cap > 0) {
        size_t m = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
        if (m) memcpy(buf, data, m);
        buf[m] = 0;
    }
    return (size_t)n;
}

static size_t name_string(const X509_NAME *name, char *buf, size_t cap) {
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) { if (cap) buf[0] = 0; return 0; }
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    size_t n = bio_to_buf(b, buf, cap);
    BIO_free(b);
    return n;
}

size_t mtls_x509_subject(X509 *x, char *buf, size_t cap) { return name_string(X509_get_subject_name(x), buf, cap); }
size_t mtls_x509_issuer(X509 *x, char *buf, size_t cap) { return name_string(X509_get_issuer_name(x), buf, cap); }

size_t mtls_x509_sans(X509 *x, char *buf, size_t cap) {
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) { if (cap) buf[0] = 0; return 0; }
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int first = 1;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            BIO_printf(b, "%s%.*s", first ? "" : "\n", ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
            first = 0;
        } else if (g->type == GEN_IPADD) {
            char txt[INET6_ADDRSTRLEN] = "";
            int len = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
            if ((len == 4 && inet_ntop(AF_INET, p, txt, sizeof txt)) || (len == 16 && inet_ntop(AF_INET6, p, txt, sizeof txt))) {
                BIO_printf(b, "%s%s", first ? "" : "\n", txt);
                first = 0;
            }
        }
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    size_t n = bio_to_buf(b, buf, cap);
    BIO_free(b);
    return n;
}

static int asn1_epoch(const ASN1_TIME *t, int64_t *out) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

int mtls_x509_validity(X509 *x, int64_t *not_before, int64_t *not_after) {
    return asn1_epoch(X509_get0_notBefore(x), not_before) && asn1_epoch(X509_get0_notAfter(x), not_after);
}

static size_t hex(const unsigned char *p, size_t n, char *buf, size_t cap) {
    static const char digits[] = "0123456789ABCDEF";
    if (cap == 0) return 2 * n;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 2 < cap; i++) {
        buf[j++] = digits[p[i] >> 4];
        buf[j++] = digits[p[i] & 15];
    }
    buf[j] = 0;
    return 2 * n;
}

size_t mtls_x509_serial_hex(X509 *x, char *buf, size_t cap) {
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    return hex(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), buf, cap);
}

size_t mtls_x509_sha256_hex(X509 *x, char *buf, size_t cap) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n) != 1) { if (cap) buf[0] = 0; return 0; }
    return hex(md, n, buf, cap);
}

size_t mtls_x509_key_description(X509 *x, char *buf, size_t cap) {
    EVP_PKEY *k = X509_get0_pubkey(x);
    int n;
    if (k == NULL) {
        n = snprintf(buf, cap, "unknown");
    } else if (EVP_PKEY_is_a(k, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &glen);
        const char *pretty = strcmp(group, "prime256v1") == 0 ? "P-256"
                           : strcmp(group, "secp384r1") == 0 ? "P-384"
                           : strcmp(group, "secp521r1") == 0 ? "P-521" : group;
        n = snprintf(buf, cap, "EC %s", pretty);
    } else if (EVP_PKEY_is_a(k, "RSA")) {
        n = snprintf(buf, cap, "RSA %d", EVP_PKEY_get_bits(k));
    } else {
        n = snprintf(buf, cap, "%s", EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "unknown");
    }
    ERR_clear_error();
    return n < 0 ? 0 : (size_t)n;
}
