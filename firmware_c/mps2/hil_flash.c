// The mps2_an385 build's file system: littlefs (VfsLfs2) on a block device in static RAM,
// mounted at "/" and made the cwd on every (soft) boot, as a real port's _boot.py does.
//
// The storage is a .bss array outside the GC heap: it keeps its files across soft resets (as a
// device's flash does), and QEMU starts it zeroed, so a power cycle (QEMU restart) begins with an
// empty file system, formatted at first boot. mps2.Flash() is the block device (rp2.Flash()'s
// interface: readblocks/writeblocks with the extended offset argument, ioctl), for vfs.VfsLfs2.mkfs.
#include <string.h>

#include "py/runtime.h"
#include "py/mperrno.h"
#include "extmod/vfs.h"
#include "extmod/vfs_lfs.h"
#include "hil_board.h"

#define BLOCK_SIZE (4096)
#define STORAGE_BYTES (HIL_FS_KB * 1024)
#define BLOCK_COUNT (STORAGE_BYTES / BLOCK_SIZE)

#if STORAGE_BYTES % BLOCK_SIZE
#error HIL_FS_KB must be a multiple of 4 (the block size is 4 KiB)
#endif

static uint8_t storage[STORAGE_BYTES] __attribute__((aligned(4)));

typedef struct _hil_flash_obj_t {
    mp_obj_base_t base;
} hil_flash_obj_t;

extern const mp_obj_type_t hil_flash_type;
static const hil_flash_obj_t hil_flash_obj = {{&hil_flash_type}};

static mp_obj_t hil_flash_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 0, false);
    return MP_OBJ_FROM_PTR(&hil_flash_obj);  // one device: the board's storage
}

// The byte range [block * BLOCK_SIZE + off, + len) inside the storage, or NULL. littlefs gets an
// error code back, never an exception raised through it.
static uint8_t *span(mp_obj_t block_in, mp_int_t off, size_t len) {
    mp_int_t block = mp_obj_get_int(block_in);
    if (block < 0 || block >= BLOCK_COUNT || off < 0) {
        return NULL;
    }
    size_t start = (size_t)block * BLOCK_SIZE + (size_t)off;
    if (start > STORAGE_BYTES || len > STORAGE_BYTES - start) {
        return NULL;
    }
    return storage + start;
}

// readblocks(block, buf[, offset]) and writeblocks(block, buf[, offset]): the same checks, the
// bytes copied out or in. With or without the offset argument a write copies straight in: RAM needs
// no erase first (a block littlefs erases, ioctl 6, reads back as 0xff, as NOR flash does).
static mp_obj_t transfer(size_t n_args, const mp_obj_t *args, bool write) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, write ? MP_BUFFER_READ : MP_BUFFER_WRITE);
    uint8_t *p = span(args[1], n_args == 4 ? mp_obj_get_int(args[3]) : 0, buf.len);
    if (p == NULL) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
    }
    if (write) {
        memcpy(p, buf.buf, buf.len);
    } else {
        memcpy(buf.buf, p, buf.len);
    }
    return MP_OBJ_NEW_SMALL_INT(0);
}

static mp_obj_t hil_flash_readblocks(size_t n_args, const mp_obj_t *args) {
    return transfer(n_args, args, false);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(hil_flash_readblocks_obj, 3, 4, hil_flash_readblocks);

static mp_obj_t hil_flash_writeblocks(size_t n_args, const mp_obj_t *args) {
    return transfer(n_args, args, true);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(hil_flash_writeblocks_obj, 3, 4, hil_flash_writeblocks);

static mp_obj_t hil_flash_ioctl(mp_obj_t self_in, mp_obj_t cmd_in, mp_obj_t arg_in) {
    switch (mp_obj_get_int(cmd_in)) {
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
            return MP_OBJ_NEW_SMALL_INT(0);
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(BLOCK_COUNT);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(BLOCK_SIZE);
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE: {
            uint8_t *p = span(arg_in, 0, BLOCK_SIZE);
            if (p == NULL) {
                return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
            }
            memset(p, 0xff, BLOCK_SIZE);  // as NOR flash reads after an erase
            return MP_OBJ_NEW_SMALL_INT(0);
        }
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(hil_flash_ioctl_obj, hil_flash_ioctl);

static const mp_rom_map_elem_t hil_flash_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&hil_flash_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&hil_flash_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&hil_flash_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(hil_flash_locals_dict, hil_flash_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    hil_flash_type,
    MP_QSTR_Flash,
    MP_TYPE_FLAG_NONE,
    make_new, hil_flash_make_new,
    locals_dict, &hil_flash_locals_dict
    );

static const mp_rom_map_elem_t mps2_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_mps2) },
    { MP_ROM_QSTR(MP_QSTR_Flash), MP_ROM_PTR(&hil_flash_type) },
};
static MP_DEFINE_CONST_DICT(mps2_module_globals, mps2_module_globals_table);

const mp_obj_module_t mps2_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mps2_module_globals,
};
MP_REGISTER_MODULE(MP_QSTR_mps2, mps2_module);

// --- boot: mount at "/" -------------------------------------------------------------------------

static mp_obj_t lfs2_open(mp_obj_t bdev) {
    return MP_OBJ_TYPE_GET_SLOT(&mp_type_vfs_lfs2, make_new)(&mp_type_vfs_lfs2, 1, 0, &bdev);
}

static mp_obj_t lfs2_format_and_open(mp_obj_t bdev) {
    mp_call_function_1(mp_load_attr(MP_OBJ_FROM_PTR(&mp_type_vfs_lfs2), MP_QSTR_mkfs), bdev);
    return lfs2_open(bdev);
}

// Run from mp_init (MICROPY_PORT_INIT_FUNC), which empties the mount table on every soft reset.
void hil_fs_mount(void) {
    mp_obj_t bdev = MP_OBJ_FROM_PTR(&hil_flash_obj);
    mp_obj_t fs = MP_OBJ_NULL;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        fs = lfs2_open(bdev);  // the files of before this soft reset
        nlr_pop();
    }
    if (nlr_push(&nlr) == 0) {
        if (fs == MP_OBJ_NULL) {
            fs = lfs2_format_and_open(bdev);  // first boot (zeroed RAM) or a storage not littlefs
        }
        mp_map_t no_kw;
        mp_map_init(&no_kw, 0);
        mp_obj_t mount_args[2] = {fs, MP_OBJ_NEW_QSTR(MP_QSTR__slash_)};
        mp_vfs_mount(2, mount_args, &no_kw);
        mp_vfs_chdir(MP_OBJ_NEW_QSTR(MP_QSTR__slash_));
        mp_obj_list_append(mp_sys_path, mp_obj_new_str("/lib", 4));  // as rp2, stm32, esp32
        nlr_pop();
    } else {
        mp_printf(&mp_plat_print, "hil: no file system: ");
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
}
