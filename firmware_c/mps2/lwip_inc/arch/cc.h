// lwIP's compiler/platform definitions for the mps2_an385 build (lwIP's arch.h supplies the rest).
#ifndef HIL_LWIP_ARCH_CC_H
#define HIL_LWIP_ARCH_CC_H

#include <assert.h>
#define LWIP_PLATFORM_DIAG(x)
#define LWIP_PLATFORM_ASSERT(x)  { assert(1); }
#define LWIP_NO_CTYPE_H 1

#endif
