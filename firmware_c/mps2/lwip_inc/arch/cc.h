// lwIP's compiler/platform definitions for the mps2_an385 build (lwIP's arch.h supplies the rest).
#ifndef HIL_LWIP_ARCH_CC_H
#define HIL_LWIP_ARCH_CC_H

#include <assert.h>
#define LWIP_PLATFORM_DIAG(x)
// An lwIP assertion is fatal and says so (hil_board.c): the ports this build follows (stm32, rp2)
// define it as nothing, which is how modlwip's close() of a listening socket went unnoticed
// writing past its PCB (see modlwip.patch)
void hil_lwip_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(x)  hil_lwip_assert(x, __FILE__, __LINE__)
#define LWIP_NO_CTYPE_H 1

#endif
