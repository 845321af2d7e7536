# The harness's mps2_an385 board: ports/qemu's MPS2_AN385 plus lwIP, mbedTLS and the C in this
# folder. harness/images/mps2.py copies this folder to ports/qemu/boards/MPS2_AN385_HIL.
include $(TOP)/ports/qemu/boards/MPS2_AN385/mpconfigboard.mk

HIL_DIR := $(BOARD_DIR)
LDSCRIPT = $(HIL_DIR)/mps2_hil.ld

MICROPY_PY_LWIP = 1
MICROPY_PY_SSL = 1
MICROPY_SSL_MBEDTLS = 1
MICROPY_PY_NETWORK = 1
MICROPY_VFS_LFS2 = 1

INC += -I$(HIL_DIR) -I$(HIL_DIR)/lwip_inc
CFLAGS += -DMP_CONFIGFILE='"hil_mpconfigport.h"'
CFLAGS += -DMICROPY_HW_UART_IRQ=1
CFLAGS += -DMBEDTLS_CONFIG_FILE='"mbedtls/mbedtls_config_port.h"'

SRC_C += \
	$(HIL_DIR)/hil_board.c \
	$(HIL_DIR)/lan9118.c \
	$(HIL_DIR)/hil_flash.c \
	shared/timeutils/timeutils.c \

# lwIP and mbedTLS are third-party code: not held to the port's -Werror warnings
CFLAGS_THIRDPARTY += -Wno-error
