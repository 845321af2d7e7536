// MicroPython configuration for the harness's mps2_an385 build: ports/qemu's own
// mpconfigport.h, then what an lwIP + mbedTLS device needs on top. Selected with
// MP_CONFIGFILE (see mpconfigboard.mk), so the port's header is used unchanged.
#include <mpconfigport.h>

#include "hil_board.h"

// time: ticks from SysTick, wall clock from the host at boot (hil_board.c)
#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME                     (1)
#define MICROPY_PY_TIME_TIME_TIME_NS        (1)
#define MICROPY_PY_TIME_GMTIME_LOCALTIME_MKTIME (1)
#define MICROPY_PY_TIME_INCLUDEFILE         "hil_modtime.c"
#define MICROPY_EPOCH_IS_1970               (1)

// select.poll over lwIP sockets (and stdin)
#undef MICROPY_PY_SELECT
#define MICROPY_PY_SELECT                   (1)

// asyncio's C core (_asyncio; ports/qemu turns it off): networked MicroPython devices ship asyncio,
// and apps and MicroPython's own tests (multi_net/asyncio_*) use it over lwIP sockets. The Python
// half is frozen from extmod/asyncio (targets/mps2_an385.toml image.freeze_packages).
#undef MICROPY_PY_ASYNCIO
#define MICROPY_PY_ASYNCIO                  (1)

// os.urandom and random's seed come from the host's entropy (hil_board.c)
#define MICROPY_PY_OS_INCLUDEFILE           "hil_modos.c"
#define MICROPY_PY_OS_URANDOM               (1)
#define MICROPY_PY_RANDOM_SEED_INIT_FUNC    (hil_random_u32())

// network: lwIP sockets over the LAN9118 (lan9118.c)
#define MICROPY_PY_NETWORK                  (1)
#define MICROPY_PY_NETWORK_HOSTNAME_DEFAULT "mps2"
#define MICROPY_PY_SOCKET                   (1)
#define MICROPY_PY_LWIP_SOCK_RAW            (1)
extern const struct _mp_obj_type_t network_lan_type;
#define MICROPY_PORT_NETWORK_INTERFACES \
    { MP_ROM_QSTR(MP_QSTR_LAN), MP_ROM_PTR(&network_lan_type) },

// TLS, hashlib and cryptolib on mbedTLS, allocating from the GC heap
#define MICROPY_TRACKED_ALLOC               (1)
#define MICROPY_PY_HASHLIB_MD5              (1)
#define MICROPY_PY_HASHLIB_SHA1             (1)
#define MICROPY_PY_CRYPTOLIB                (1)

// sleep instead of spinning: the REPL and every blocking wait end up here
#define MICROPY_INTERNAL_EVENT_HOOK         hil_event_hook()
#define MICROPY_INTERNAL_WFE(TIMEOUT_MS)    hil_wfe(TIMEOUT_MS)
// ... and run the network from running Python code too, once an interrupt flagged work (a
// poll() loop that never waits must still see new frames: hil_board.c hil_vm_net_poll)
#define MICROPY_VM_HOOK_LOOP                if (hil_net_due) { hil_vm_net_poll(); }
#define MICROPY_VM_HOOK_RETURN              MICROPY_VM_HOOK_LOOP

// a file system, as MicroPython devices ship: littlefs on HIL_FS_KB of static RAM (hil_flash.c),
// mounted at "/" on every soft boot; it keeps its files across soft resets, not QEMU restarts.
// MICROPY_VFS and MICROPY_READER_VFS (import from files) are the port's own; mpconfigboard.mk adds
// MICROPY_VFS_LFS2 (littlefs sources and -DMICROPY_VFS_LFS2=1).
#ifndef HIL_FS_KB
#define HIL_FS_KB                           (512)
#endif

#define MICROPY_PORT_INIT_FUNC              do { hil_board_init(); hil_fs_mount(); } while (0)
#define MICROPY_PORT_DEINIT_FUNC            hil_board_deinit()
