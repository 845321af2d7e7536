// Board services for MicroPython's ports/qemu on QEMU's mps2-an385 (Cortex-M3, 25 MHz):
// a RAM vector table with the interrupts the port leaves out, a 1 kHz SysTick, an
// interrupt-driven console (so Ctrl-C stops running code and idle waits can sleep),
// WFI idling, and the host's time and entropy read over semihosting at boot.

#include <stdlib.h>
#include <string.h>

#include "py/mphal.h"
#include "py/runtime.h"
#include "shared/runtime/interrupt_char.h"
#include "shared/timeutils/timeutils.h"

#include "hil_board.h"

#define SYSCLK_HZ (25000000)
#define TICK_HZ (100)  // a 1 kHz tick alone costs an idle QEMU ~6 % of a core; 100 Hz < 1 %
#define TICK_US (1000000 / TICK_HZ)
#define CYCLES_PER_US (SYSCLK_HZ / 1000000)

// --- Cortex-M system registers -------------------------------------------------------------
#define REG(addr) (*(volatile uint32_t *)(addr))
#define SCB_ICSR REG(0xE000ED04)
#define ICSR_PENDSTSET (1u << 26)
#define SCB_VTOR REG(0xE000ED08)
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)
#define NVIC_ISER0 REG(0xE000E100)
#define NVIC_ISPR0 REG(0xE000E200)

// --- CMSDK APB UART0 (console) -------------------------------------------------------------
#define UART0_BASE (0x40004000)
#define UART_DATA REG(UART0_BASE + 0x00)
#define UART_STATE REG(UART0_BASE + 0x04)
#define UART_CTRL REG(UART0_BASE + 0x08)
#define UART_INTSTATUS REG(UART0_BASE + 0x0c)
#define UART_STATE_RXFULL (1 << 1)
#define UART_CTRL_RX_INTEN (1 << 3)
#define UART_INT_RX (1 << 1)

#define IRQ_UART0_RX (0)
#define IRQ_ETHERNET (13)
#define NUM_IRQS (32)

// --- vector table in RAM (the port's table stops at SysTick) -------------------------------
static void (*ram_vectors[16 + NUM_IRQS])(void) __attribute__((aligned(256)));

static volatile uint32_t ticks;  // SysTick periods since boot
volatile uint8_t hil_net_due;    // see hil_vm_net_poll

static void systick_handler(void) {
    ticks++;
    hil_net_due = 1;  // lwIP's timers may be due
}

// --- console: bytes move from the UART to a ring in the RX interrupt -------------------------
#define RX_RING_SIZE (512)
static volatile uint8_t rx_ring[RX_RING_SIZE];
static volatile uint32_t rx_head, rx_tail;  // head: next write, tail: next read

static void uart0_rx_handler(void) {
    UART_INTSTATUS = UART_INT_RX;  // clear first: a byte arriving from here on raises it again
    while (UART_STATE & UART_STATE_RXFULL) {
        if (rx_head - rx_tail >= RX_RING_SIZE) {
            // ring full: leave the byte in the UART (QEMU holds the rest back) until the
            // reader has made room; it turns the interrupt back on
            UART_CTRL &= ~UART_CTRL_RX_INTEN;
            return;
        }
        int c = UART_DATA;
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();  // stops running code, as on a real port
            rx_tail = rx_head;  // and drops type-ahead, as a tty does on ^C: a stray byte left
            continue;           // behind would join the raw REPL's next command
        }
        rx_ring[rx_head % RX_RING_SIZE] = c;
        rx_head++;
    }
}

int hil_stdin_ready(void) {
    return rx_head != rx_tail;
}

int hil_stdin_rx_chr(void) {
    __asm__ volatile ("cpsid i" ::: "memory");  // the RX interrupt may move rx_tail (^C flush)
    if (rx_head == rx_tail) {
        __asm__ volatile ("cpsie i" ::: "memory");
        return -1;
    }
    int c = rx_ring[rx_tail % RX_RING_SIZE];
    rx_tail++;
    __asm__ volatile ("cpsie i" ::: "memory");
    if (!(UART_CTRL & UART_CTRL_RX_INTEN)) {
        // there is room again; the UART raises its interrupt only for bytes that arrive while it
        // is enabled, so a byte already waiting there needs the handler called by hand
        UART_CTRL |= UART_CTRL_RX_INTEN;
        NVIC_ISPR0 = 1 << IRQ_UART0_RX;
    }
    return c;
}

static void ethernet_handler(void) {
    lan9118_irq();
    hil_net_due = 1;
}

// --- semihosting (QEMU runs with -semihosting; the port already relies on it) ---------------
#define SYS_OPEN (0x01)
#define SYS_CLOSE (0x02)
#define SYS_READ (0x06)
#define SYS_TIME (0x11)

static uint32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__ ("r0") = op;
    register const void *r1 __asm__ ("r1") = arg;
    __asm__ __volatile__ ("bkpt 0xAB" : "+r" (r0) : "r" (r1) : "memory");
    return r0;
}

static int urandom_handle = -1;
static uint64_t boot_epoch_ms;  // host wall clock at boot, minus the ticks so far

static void read_host_facts(void) {
    // Entropy: the host's /dev/urandom, kept open for the whole run (never a constant seed).
    static const char path[] = "/dev/urandom";
    uint32_t open_args[3] = { (uint32_t)path, 0 /* "r" */, sizeof(path) - 1 };
    int h = (int)semihost(SYS_OPEN, open_args);
    urandom_handle = h >= 0 ? h : -1;
    // Wall clock: seconds since 1970 from the host (certificate validity needs real time).
    uint32_t now = semihost(SYS_TIME, NULL);
    boot_epoch_ms = (uint64_t)now * 1000 - mp_hal_ticks_ms();
}

int hil_entropy(uint8_t *buf, size_t len) {
    if (urandom_handle < 0) {
        return -1;
    }
    while (len > 0) {
        uint32_t args[3] = { (uint32_t)urandom_handle, (uint32_t)buf, len };
        uint32_t left = semihost(SYS_READ, args);  // bytes NOT read
        if (left >= len) {
            return -1;
        }
        buf += len - left;
        len = left;
    }
    return 0;
}

uint32_t hil_random_u32(void) {
    uint32_t r = 0;
    if (hil_entropy((uint8_t *)&r, sizeof(r)) != 0) {
        r = SYST_CVR ^ (ticks << 12);  // only for random.seed(); TLS refuses to run instead
    }
    return r;
}

// --- time ------------------------------------------------------------------------------------
// Microseconds since boot: whole ticks plus how far the SysTick counter has run down. Never
// backwards: modlwip and time.ticks_diff compare with unsigned subtraction, so a step back of one
// tick would look like 49 days and fire every timeout at once.
static uint64_t uptime_us(void) {
    uint32_t t, val;
    do {  // a tick handled between the reads would pair a new count with an old period
        t = ticks;
        val = SYST_CVR;
        if (SCB_ICSR & ICSR_PENDSTSET) {
            // the counter reloaded but its interrupt has not run yet (interrupts masked, or QEMU
            // takes them only between translated blocks): count that tick, read the new period
            t++;
            val = SYST_CVR;
        }
    } while (t != ticks && t != ticks + 1);
    return (uint64_t)t * TICK_US + (SYSCLK_HZ / TICK_HZ - 1 - val) / CYCLES_PER_US;
}

uint32_t hil_ticks_ms(void) {
    return uptime_us() / 1000;
}

mp_uint_t mp_hal_ticks_ms(void) {
    return uptime_us() / 1000;
}

mp_uint_t mp_hal_ticks_us(void) {
    return uptime_us();
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return uptime_us() * CYCLES_PER_US;
}

void mp_hal_delay_us(mp_uint_t us) {
    mp_uint_t start = mp_hal_ticks_us();
    while (mp_hal_ticks_us() - start < us) {
    }
}

void mp_hal_delay_ms(mp_uint_t ms) {
    uint64_t end = uptime_us() + (uint64_t)ms * 1000;
    // sleep through whole tick periods (Ctrl-C still stops it), then wait out the rest
    while (uptime_us() + TICK_US < end) {
        mp_event_wait_ms((end - uptime_us()) / 1000);
    }
    while (uptime_us() < end) {
        mp_event_handle_nowait();
    }
}

uint64_t hil_time_ns(void) {
    return boot_epoch_ms * 1000000ULL + uptime_us() * 1000ULL;
}

uint64_t mp_hal_time_ns(void) {
    return hil_time_ns();
}

// --- idling ------------------------------------------------------------------------------------
static int just_worked;  // the hook just handled frames: the caller's condition may now hold

void hil_event_hook(void) {
    static int busy;
    if (!busy) {  // lwIP callbacks may wait in turn: never re-enter the stack
        busy = 1;
        just_worked |= lan9118_poll();
        busy = 0;
    }
}

// The network runs in thread context, so Python code that never waits would starve it: a loop
// around poll() that finds a socket ready at once never reaches the event hook, and frames for
// the other sockets stayed in the chip's FIFO for good (suites/sockets test_poll's
// test_pollin_only_on_the_sockets_with_data saw only the socket whose byte came first). The VM
// calls this on its branches and returns once an interrupt has flagged work (esp8266's port runs
// its network from the same VM hooks); a real port's network interrupt does the same job.
void hil_vm_net_poll(void) {
    hil_net_due = 0;  // first: an interrupt while the stack runs asks again
    hil_event_hook();
}

void hil_wfe(int timeout_ms) {
    (void)timeout_ms;  // SysTick wakes us every tick period at the latest: callers loop on their deadline
    if (just_worked) {
        just_worked = 0;  // let the caller look at what the frames brought before sleeping
        return;
    }
    __asm__ volatile ("cpsid i" ::: "memory");
    int idle = !hil_stdin_ready() && !(UART_STATE & UART_STATE_RXFULL) && !lan9118_pending();
    if (idle && MP_STATE_THREAD(mp_pending_exception) == MP_OBJ_NULL) {
        __asm__ volatile ("wfi" ::: "memory");  // a pending interrupt wakes it even while masked
    }
    __asm__ volatile ("cpsie i" ::: "memory");
}

// --- set-up --------------------------------------------------------------------------------------
void hil_board_init(void) {
    static int done;
    if (done) {
        return;  // soft reset: hardware and the network interface stay up
    }
    done = 1;
    const uint32_t *rom = (const uint32_t *)SCB_VTOR;
    for (int i = 0; i < 16; i++) {
        ram_vectors[i] = (void (*)(void))rom[i];
    }
    for (int i = 16; i < 16 + NUM_IRQS; i++) {
        ram_vectors[i] = ram_vectors[3];  // HardFault_Handler: an unexpected interrupt is a bug
    }
    ram_vectors[15] = systick_handler;
    ram_vectors[16 + IRQ_UART0_RX] = uart0_rx_handler;
    ram_vectors[16 + IRQ_ETHERNET] = ethernet_handler;
    SCB_VTOR = (uint32_t)ram_vectors;

    SYST_RVR = SYSCLK_HZ / TICK_HZ - 1;
    SYST_CVR = 0;
    SYST_CSR = 7;  // processor clock, interrupt, enable

    UART_CTRL |= UART_CTRL_RX_INTEN;
    NVIC_ISER0 = 1 << IRQ_UART0_RX;  // the Ethernet line is enabled by lan9118.c once configured
    // A byte that arrived before RX_INTEN was set (the host typing while we boot) raises no
    // interrupt, and the UART takes nothing more until it is read (QEMU holds the rest back):
    // without this the console stays deaf for good. Run the handler once to take it.
    NVIC_ISPR0 = 1 << IRQ_UART0_RX;

    read_host_facts();
    lan9118_stack_init();
}

void hil_board_deinit(void) {
}

// --- mbedTLS hooks -----------------------------------------------------------------------------
#if MICROPY_SSL_MBEDTLS
#include "mbedtls/platform_time.h"
#include "mbedtls/entropy.h"

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen) {
    (void)data;
    if (hil_entropy(output, len) != 0) {
        *olen = 0;
        return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;  // no host entropy: TLS fails, never weakly
    }
    *olen = len;
    return 0;
}

time_t hil_time_seconds(time_t *timer) {
    time_t t = hil_time_ns() / 1000000000ULL;
    if (timer) {
        *timer = t;
    }
    return t;
}

mbedtls_ms_time_t mbedtls_ms_time(void) {
    return hil_time_ns() / 1000000ULL;
}

struct tm *mbedtls_platform_gmtime_r(const mbedtls_time_t *tt, struct tm *tm_buf) {
    timeutils_struct_time_t t;
    timeutils_seconds_since_epoch_to_struct_time(*tt, &t);
    tm_buf->tm_sec = t.tm_sec;
    tm_buf->tm_min = t.tm_min;
    tm_buf->tm_hour = t.tm_hour;
    tm_buf->tm_mday = t.tm_mday;
    tm_buf->tm_mon = t.tm_mon - 1;
    tm_buf->tm_year = t.tm_year - 1900;
    tm_buf->tm_wday = t.tm_wday;
    tm_buf->tm_yday = t.tm_yday;
    tm_buf->tm_isdst = 0;
    return tm_buf;
}
#endif

// lwIP's LWIP_ASSERT (lwip_inc/arch/cc.h): name the broken invariant on the console and end the
// run (QEMU exits with status 1: the harness reports a crash with this line in the console tail),
// rather than carry on with a corrupted stack
void hil_lwip_assert(const char *msg, const char *file, int line) {
    mp_printf(&mp_plat_print, "\nlwIP assertion failed: %s (%s:%d)\n", msg, file, line);
    exit(1);
}

// The port links without a C library (-nostdlib); lwIP's netif_find needs atoi.
int atoi(const char *s) {
    int sign = 1, n = 0;
    while (*s == ' ') {
        s++;
    }
    if (*s == '-' || *s == '+') {
        sign = *s++ == '-' ? -1 : 1;
    }
    while (*s >= '0' && *s <= '9') {
        n = n * 10 + (*s++ - '0');
    }
    return sign * n;
}
