// os.urandom for the mps2_an385 build: bytes from the host's /dev/urandom (hil_board.c).
#include "py/runtime.h"
#include "py/mperrno.h"
#include "hil_board.h"

static mp_obj_t mp_os_urandom(mp_obj_t num) {
    mp_int_t n = mp_obj_get_int(num);
    vstr_t vstr;
    vstr_init_len(&vstr, n);
    if (hil_entropy((uint8_t *)vstr.buf, n) != 0) {
        mp_raise_OSError(MP_ENODEV);  // QEMU gave no /dev/urandom over semihosting
    }
    return mp_obj_new_bytes_from_vstr(&vstr);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mp_os_urandom_obj, mp_os_urandom);
