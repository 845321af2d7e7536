// Board services the harness's mps2_an385 build adds to ports/qemu (see hil_board.c).
#ifndef HIL_BOARD_H
#define HIL_BOARD_H

#include <stddef.h>
#include <stdint.h>

void hil_board_init(void);      // once per soft reset (idempotent hardware set-up)
void hil_board_deinit(void);
void hil_event_hook(void);      // run pending work: network frames and lwIP timers
extern volatile uint8_t hil_net_due;  // an Ethernet interrupt or a tick came: the stack has work
void hil_vm_net_poll(void);     // the event hook, from the VM (MICROPY_VM_HOOK_LOOP)
void hil_wfe(int timeout_ms);   // sleep until an interrupt (or at most ~1 ms)

int hil_stdin_rx_chr(void);     // next console byte, or -1
int hil_stdin_ready(void);

uint32_t hil_ticks_ms(void);
uint64_t hil_time_ns(void);     // wall clock: host time at boot + ticks
int hil_entropy(uint8_t *buf, size_t len);  // 0 on success, -1 if the host gave none
uint32_t hil_random_u32(void);

// File system (hil_flash.c): littlefs on static RAM, mounted at "/" on every soft boot
void hil_fs_mount(void);

// Ethernet (lan9118.c)
void lan9118_stack_init(void);
void lan9118_irq(void);
int lan9118_poll(void);      // 1 if frames were handled
int lan9118_pending(void);   // the chip raised its interrupt since the last poll
void lan9118_deinit(void);

#endif
