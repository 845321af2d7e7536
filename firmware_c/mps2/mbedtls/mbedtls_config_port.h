// mbedTLS configuration for the mps2_an385 build: MicroPython's common bare-metal set with the
// host-provided clock and entropy of hil_board.c.
#ifndef HIL_MBEDTLS_CONFIG_PORT_H
#define HIL_MBEDTLS_CONFIG_PORT_H

#include <time.h>
extern time_t hil_time_seconds(time_t *timer);
#define MBEDTLS_PLATFORM_TIME_MACRO hil_time_seconds
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_PLATFORM_GMTIME_R_ALT

#define MICROPY_MBEDTLS_CONFIG_BARE_METAL (1)
#include "extmod/mbedtls/mbedtls_config_common.h"

#endif
