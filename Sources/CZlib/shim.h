// The system zlib (Debian zlib1g-dev) for IMAP COMPRESS=DEFLATE (RFC 4978). deflateInit2 and
// inflateInit2 are macros (they pass the library version and the stream's size): wrapped here.
#include <zlib.h>

static inline int czlib_deflate_init(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}

static inline int czlib_inflate_init(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
