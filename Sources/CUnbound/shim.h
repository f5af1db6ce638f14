// libunbound's API (validating, caching DNS resolver library; Debian libunbound-dev) for MailDNS.
#include <unbound.h>
