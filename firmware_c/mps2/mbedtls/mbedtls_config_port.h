// mbedTLS configuration for the mps2_an385 build: MicroPython's common bare-metal set with the
// host-provided clock and entropy of hil_board.c, plus three TLS 1.2 protocol options chosen on
// purpose (MicroPython's common set leaves them off; Mbed TLS's own default config has them on).
// suites/tls shows the difference from the unix port's build in expected_failures.toml.
#ifndef HIL_MBEDTLS_CONFIG_PORT_H
#define HIL_MBEDTLS_CONFIG_PORT_H

#include <time.h>
extern time_t hil_time_seconds(time_t *timer);
#define MBEDTLS_PLATFORM_TIME_MACRO hil_time_seconds
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_PLATFORM_GMTIME_R_ALT

#define MICROPY_MBEDTLS_CONFIG_BARE_METAL (1)
#include "extmod/mbedtls/mbedtls_config_common.h"

// A record that fails its MAC check is answered with a fatal bad_record_mac alert (RFC 5246
// 7.2.2 "MUST"); without this option Mbed TLS 3.6 closes silently. It gates nothing else: other
// fatal handshake errors alert (or not) the same either way. Cost: a few bytes of code.
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
// RFC 7627 extended master secret: binds the master secret to the handshake transcript (the
// triple-handshake attack); every current TLS 1.2 peer offers it.
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
// RFC 7366 encrypt-then-MAC for the CBC suites this build offers: the MAC covers the ciphertext,
// so padding is never examined before the record is authenticated (Lucky 13 class).
#define MBEDTLS_SSL_ENCRYPT_THEN_MAC

#endif
