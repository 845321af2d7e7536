// lwIP network interface for the SMSC LAN9118 of QEMU's mps2-an385 (0x40200000, IRQ 13),
// and MicroPython's network.LAN class on top of it.
//
// Frames are moved between the chip's FIFOs and lwIP in thread context (hil_event_hook,
// called by every blocking wait and the idle REPL); the interrupt only wakes the CPU.

#include <string.h>

#include "py/runtime.h"
#include "py/mphal.h"
#include "py/mperrno.h"
#include "extmod/modnetwork.h"

#include "lwip/netif.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/dhcp.h"
#include "lwip/timeouts.h"
#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "lwip/priv/tcp_priv.h"
#include "netif/ethernet.h"

#include "hil_board.h"

#define ETH_BASE (0x40200000)
#define ETH_REG(off) (*(volatile uint32_t *)(ETH_BASE + (off)))
#define RX_DATA_FIFO ETH_REG(0x00)
#define TX_DATA_FIFO ETH_REG(0x20)
#define RX_STATUS_FIFO ETH_REG(0x40)
#define ID_REV ETH_REG(0x50)
#define IRQ_CFG ETH_REG(0x54)
#define INT_STS ETH_REG(0x58)
#define INT_EN ETH_REG(0x5c)
#define BYTE_TEST ETH_REG(0x64)
#define FIFO_INT ETH_REG(0x68)
#define RX_CFG ETH_REG(0x6c)
#define TX_CFG ETH_REG(0x70)
#define HW_CFG ETH_REG(0x74)
#define RX_FIFO_INF ETH_REG(0x7c)
#define TX_FIFO_INF ETH_REG(0x80)
#define PMT_CTRL ETH_REG(0x84)
#define MAC_CSR_CMD ETH_REG(0xa4)
#define MAC_CSR_DATA ETH_REG(0xa8)

#define IRQ_CFG_EN (1 << 8)
#define IRQ_CFG_POL_HIGH (1 << 4)
#define IRQ_CFG_PUSH_PULL (1 << 0)
#define INT_RSFL (1 << 3)
#define INT_PHY (1 << 18)
#define HW_CFG_SRST (1 << 0)
#define PMT_READY (1 << 0)
#define TX_CFG_ON (1 << 1)
#define TX_CFG_SAO (1 << 2)  // TX status may overrun: we never read it
#define CSR_BUSY (1u << 31)
#define CSR_READ (1 << 30)

#define MAC_CR 1
#define MAC_ADDRH 2
#define MAC_ADDRL 3
#define MAC_MII_ACC 6
#define MAC_MII_DATA 7
#define MAC_CR_FDPX (1 << 20)
#define MAC_CR_MCPAS (1 << 19)
#define MAC_CR_TXEN (1 << 3)
#define MAC_CR_RXEN (1 << 2)

#define PHY_ADDR 1
#define PHY_BSR 1
#define PHY_BSR_LINK (1 << 2)
#define PHY_ISR 29
#define PHY_IMR 30
#define PHY_INT_LINK (0x80 | 0x40 | 0x10)  // energy on, autoneg complete, link down

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100)
#define NVIC_ICER0 (*(volatile uint32_t *)0xE000E180)
#define IRQ_ETHERNET (13)

#define ETH_MTU (1500)
#define FRAME_MAX (1536)

typedef struct {
    struct netif netif;
    int present;    // the chip answered at init
    int active;     // interface up (network.LAN().active(True))
    uint32_t rx_frames, tx_frames, rx_dropped, rx_errors, irqs;
} lan9118_t;

static lan9118_t eth;
static uint32_t frame_buf[FRAME_MAX / 4];
static volatile int irq_seen;

// --- chip access -------------------------------------------------------------------------------
static uint32_t mac_read(int reg) {
    MAC_CSR_CMD = CSR_BUSY | CSR_READ | reg;
    while (MAC_CSR_CMD & CSR_BUSY) {
    }
    return MAC_CSR_DATA;
}

static void mac_write(int reg, uint32_t val) {
    MAC_CSR_DATA = val;
    MAC_CSR_CMD = CSR_BUSY | reg;
    while (MAC_CSR_CMD & CSR_BUSY) {
    }
}

static uint32_t phy_read(int reg) {
    while (mac_read(MAC_MII_ACC) & 1) {
    }
    mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | (reg << 6) | 1);
    while (mac_read(MAC_MII_ACC) & 1) {
    }
    return mac_read(MAC_MII_DATA) & 0xffff;
}

static void phy_write(int reg, uint32_t val) {
    while (mac_read(MAC_MII_ACC) & 1) {
    }
    mac_write(MAC_MII_DATA, val);
    mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | (reg << 6) | 2 | 1);
    while (mac_read(MAC_MII_ACC) & 1) {
    }
}

static int link_is_up(void) {
    return (phy_read(PHY_BSR) & PHY_BSR_LINK) != 0;
}

u32_t sys_now(void) {
    return mp_hal_ticks_ms();  // lwIP's clock for its timers
}

void lan9118_irq(void) {
    INT_EN = 0;  // the line is level-triggered: mask it until the thread has drained the FIFOs
    irq_seen = 1;
    eth.irqs++;
}

// --- lwIP glue -----------------------------------------------------------------------------------
static err_t lan9118_output(struct netif *netif, struct pbuf *p) {
    (void)netif;
    uint16_t len = p->tot_len;
    if (len > FRAME_MAX - 4) {
        return ERR_BUF;
    }
    pbuf_copy_partial(p, frame_buf, len, 0);
    uint32_t words = (len + 3) / 4;
    if ((TX_FIFO_INF & 0xffff) < words * 4 + 8) {
        return ERR_MEM;  // FIFO full: lwIP retries (TCP) or the datagram is lost (UDP), as on hw
    }
    TX_DATA_FIFO = (1 << 13) | (1 << 12) | len;   // command A: first and last segment
    TX_DATA_FIFO = ((uint32_t)eth.tx_frames << 16) | len;  // command B: tag, packet length
    for (uint32_t i = 0; i < words; i++) {
        TX_DATA_FIFO = frame_buf[i];
    }
    eth.tx_frames++;
    return ERR_OK;
}

static void rx_frames(void) {
    while ((RX_FIFO_INF >> 16) & 0xff) {
        uint32_t status = RX_STATUS_FIFO;
        uint32_t len = (status >> 16) & 0x3fff;  // includes the 4-byte FCS
        uint32_t words = (len + 3) / 4;
        if (words > FRAME_MAX / 4) {
            for (uint32_t i = 0; i < words; i++) {
                (void)RX_DATA_FIFO;
            }
            eth.rx_errors++;
            continue;
        }
        for (uint32_t i = 0; i < words; i++) {
            frame_buf[i] = RX_DATA_FIFO;
        }
        if ((status & (1 << 15)) || len < 18) {
            eth.rx_errors++;
            continue;
        }
        struct pbuf *p = pbuf_alloc(PBUF_RAW, len - 4, PBUF_POOL);
        if (p == NULL) {
            eth.rx_dropped++;  // out of lwIP buffers: counted, visible in LAN().status('rx_dropped')
            continue;
        }
        pbuf_take(p, frame_buf, len - 4);
        eth.rx_frames++;
        if (eth.netif.input(p, &eth.netif) != ERR_OK) {
            pbuf_free(p);
        }
    }
}

static void check_link(void) {
    (void)phy_read(PHY_ISR);  // reading clears the PHY's interrupt source
    if (link_is_up()) {
        if (!netif_is_link_up(&eth.netif)) {
            netif_set_link_up(&eth.netif);
        }
    } else if (netif_is_link_up(&eth.netif)) {
        netif_set_link_down(&eth.netif);
    }
}

int lan9118_poll(void) {
    int worked = 0;
    if (eth.active && irq_seen) {  // register reads are costly under emulation: only when told
        uint32_t sts = INT_STS;
        INT_STS = sts & (INT_RSFL | INT_PHY);  // clear before draining: new frames raise it again
        if (sts & INT_PHY) {
            check_link();
        }
        rx_frames();
        irq_seen = 0;
        INT_EN = INT_RSFL | INT_PHY;
        worked = 1;
    }
    sys_check_timeouts();
    return worked;
}

int lan9118_pending(void) {
    return irq_seen;
}

static err_t lan9118_netif_init(struct netif *netif) {
    netif->linkoutput = lan9118_output;
    netif->output = etharp_output;
    #if LWIP_IPV6
    netif->output_ip6 = ethip6_output;
    #endif
    netif->mtu = ETH_MTU;
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP;
    #if LWIP_IPV6
    netif->flags |= NETIF_FLAG_MLD6;
    #endif
    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->hwaddr_len = 6;
    return ERR_OK;
}

static void chip_init(void) {
    NVIC_ICER0 = 1 << IRQ_ETHERNET;  // until IRQ_CFG is set the line idles active (low = asserted)
    if (BYTE_TEST != 0x87654321) {
        mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("no LAN9118 at 0x40200000 (is QEMU's machine mps2-an385?)"));
    }
    HW_CFG = HW_CFG_SRST;
    for (uint32_t start = mp_hal_ticks_ms(); (HW_CFG & HW_CFG_SRST) || !(PMT_CTRL & PMT_READY);) {
        if (mp_hal_ticks_ms() - start > 1000) {
            mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("LAN9118 did not come out of reset"));
        }
    }
    // The MAC address is what the chip loaded from its EEPROM: QEMU's -nic mac=..., which
    // the harness takes from the target file.
    uint32_t lo = mac_read(MAC_ADDRL), hi = mac_read(MAC_ADDRH);
    uint8_t *mac = eth.netif.hwaddr;
    mac[0] = lo;
    mac[1] = lo >> 8;
    mac[2] = lo >> 16;
    mac[3] = lo >> 24;
    mac[4] = hi;
    mac[5] = hi >> 8;
    RX_CFG = 0;
    FIFO_INT = 0x48000000;  // RX status level 0: RSFL as soon as one frame is in
    TX_CFG = TX_CFG_ON | TX_CFG_SAO;
    mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX | MAC_CR_MCPAS);
    phy_write(PHY_IMR, PHY_INT_LINK);
    IRQ_CFG = IRQ_CFG_EN | IRQ_CFG_POL_HIGH | IRQ_CFG_PUSH_PULL;
    INT_STS = 0xffffffff;
    INT_EN = INT_RSFL | INT_PHY;
    NVIC_ISER0 = 1 << IRQ_ETHERNET;
    eth.present = 1;
}

static void lan_up(void) {
    if (eth.active) {
        return;
    }
    chip_init();
    ip4_addr_t zero = { 0 };
    netif_add(&eth.netif, &zero, &zero, &zero, NULL, lan9118_netif_init, ethernet_input);
    netif_set_hostname(&eth.netif, mod_network_hostname_data);
    netif_set_default(&eth.netif);
    netif_set_up(&eth.netif);
    #if LWIP_IPV6
    netif_create_ip6_linklocal_address(&eth.netif, 1);
    #endif
    eth.active = 1;
    if (link_is_up()) {
        netif_set_link_up(&eth.netif);
    }
    dhcp_start(&eth.netif);  // as stm32's LAN does; ipconfig(addr4=...) switches to static
}

static void lan_down(void) {
    if (!eth.active) {
        return;
    }
    dhcp_stop(&eth.netif);
    netif_set_down(&eth.netif);
    netif_remove(&eth.netif);
    INT_EN = 0;
    NVIC_ICER0 = 1 << IRQ_ETHERNET;
    mac_write(MAC_CR, 0);
    eth.active = 0;
}

void lan9118_stack_init(void) {
    lwip_init();  // once per boot: sockets work (on loopback addresses) before the LAN is up
}

void lan9118_deinit(void) {
    lan_down();
}

// --- network.LAN -----------------------------------------------------------------------------------
typedef struct {
    mp_obj_base_t base;
} network_lan_obj_t;

const mp_obj_type_t network_lan_type;
static const network_lan_obj_t network_lan_obj = { { &network_lan_type } };

static mp_obj_t network_lan_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 0, false);
    return MP_OBJ_FROM_PTR(&network_lan_obj);
}

// status codes as other ports' LAN: 0 down, 1 link up (no address), 3 link up with an address
static int lan_status(void) {
    if (!eth.active || !netif_is_link_up(&eth.netif)) {
        return 0;
    }
    return ip4_addr_isany_val(*netif_ip4_addr(&eth.netif)) ? 1 : 3;
}

static void network_lan_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    const ip4_addr_t *ip = netif_ip4_addr(&eth.netif);
    mp_printf(print, "<LAN9118 %u %s>", lan_status(), eth.active ? ip4addr_ntoa(ip) : "down");
}

static mp_obj_t network_lan_active(size_t n_args, const mp_obj_t *args) {
    if (n_args == 1) {
        return mp_obj_new_bool(eth.active);
    }
    if (mp_obj_is_true(args[1])) {
        lan_up();
    } else {
        lan_down();
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(network_lan_active_obj, 1, 2, network_lan_active);

static mp_obj_t network_lan_isconnected(mp_obj_t self_in) {
    return mp_obj_new_bool(lan_status() == 3);
}
static MP_DEFINE_CONST_FUN_OBJ_1(network_lan_isconnected_obj, network_lan_isconnected);

static mp_obj_t network_lan_ifconfig(size_t n_args, const mp_obj_t *args) {
    return mod_network_nic_ifconfig(&eth.netif, n_args - 1, args + 1);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(network_lan_ifconfig_obj, 1, 2, network_lan_ifconfig);

static mp_obj_t network_lan_ipconfig(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) {
    return mod_network_nic_ipconfig(&eth.netif, n_args - 1, args + 1, kwargs);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(network_lan_ipconfig_obj, 1, network_lan_ipconfig);

// --- lwIP's own accounting, for tests that must name the pool that ran out -----------------------
// memp pool names in memp_t order (lwIP keeps them only in debug builds)
static const char *const pool_names[] = {
    #define LWIP_MEMPOOL(name, num, size, desc) #name,
    #include "lwip/priv/memp_std.h"
};

// {pool: (used, max, avail, err)} for every memp pool, plus 'MEM' for the MEM_SIZE heap
static mp_obj_t lwip_pool_stats(void) {
    mp_obj_t d = mp_obj_new_dict(MEMP_MAX + 1);
    for (size_t i = 0; i < MEMP_MAX; i++) {
        const struct stats_mem *m = lwip_stats.memp[i];
        mp_obj_t t[4] = { MP_OBJ_NEW_SMALL_INT(m->used), MP_OBJ_NEW_SMALL_INT(m->max),
                          MP_OBJ_NEW_SMALL_INT(m->avail), mp_obj_new_int_from_uint(m->err) };
        mp_obj_dict_store(d, mp_obj_new_str_from_cstr(pool_names[i]), mp_obj_new_tuple(4, t));
    }
    const struct stats_mem *m = &lwip_stats.mem;
    mp_obj_t t[4] = { MP_OBJ_NEW_SMALL_INT(m->used), MP_OBJ_NEW_SMALL_INT(m->max),
                      MP_OBJ_NEW_SMALL_INT(m->avail), mp_obj_new_int_from_uint(m->err) };
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_MEM), mp_obj_new_tuple(4, t));
    return d;
}

// TCP PCBs per state, indexed by lwIP's enum tcp_state (CLOSED, LISTEN, SYN_SENT, SYN_RCVD,
// ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT): which
// connections hold the pool when socket() says ENOMEM
static mp_obj_t lwip_tcp_states(void) {
    mp_obj_t counts[TIME_WAIT + 1];
    int n[TIME_WAIT + 1] = { 0 };
    struct tcp_pcb *lists[] = { tcp_bound_pcbs, tcp_active_pcbs, tcp_tw_pcbs };
    for (size_t i = 0; i < MP_ARRAY_SIZE(lists); i++) {
        for (struct tcp_pcb *pcb = lists[i]; pcb != NULL; pcb = pcb->next) {
            n[pcb->state]++;
        }
    }
    for (struct tcp_pcb_listen *pcb = tcp_listen_pcbs.listen_pcbs; pcb != NULL; pcb = pcb->next) {
        n[LISTEN]++;
    }
    for (int i = 0; i <= TIME_WAIT; i++) {
        counts[i] = MP_OBJ_NEW_SMALL_INT(n[i]);
    }
    return mp_obj_new_tuple(TIME_WAIT + 1, counts);
}

static mp_obj_t network_lan_status(size_t n_args, const mp_obj_t *args) {
    if (n_args == 1) {
        return MP_OBJ_NEW_SMALL_INT(lan_status());
    }
    switch (mp_obj_str_get_qstr(args[1])) {
        case MP_QSTR_rx_frames:
            return mp_obj_new_int_from_uint(eth.rx_frames);
        case MP_QSTR_tx_frames:
            return mp_obj_new_int_from_uint(eth.tx_frames);
        case MP_QSTR_rx_dropped:
            return mp_obj_new_int_from_uint(eth.rx_dropped);
        case MP_QSTR_rx_errors:
            return mp_obj_new_int_from_uint(eth.rx_errors);
        case MP_QSTR_irqs:
            return mp_obj_new_int_from_uint(eth.irqs);
        case MP_QSTR_rx_pending:
            // frames in the chip's RX FIFO that lwIP has not been given yet: non-zero for long
            // means nothing is running lan9118_poll (Python code that never waits)
            return MP_OBJ_NEW_SMALL_INT(eth.active ? (RX_FIFO_INF >> 16) & 0xff : 0);
        case MP_QSTR_pools:
            return lwip_pool_stats();
        case MP_QSTR_tcp_states:
            return lwip_tcp_states();
        default:
            mp_raise_ValueError(MP_ERROR_TEXT("unknown status param"));
    }
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(network_lan_status_obj, 1, 2, network_lan_status);

static mp_obj_t network_lan_config(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) {
    if (kwargs->used == 0 && n_args == 2) {
        switch (mp_obj_str_get_qstr(args[1])) {
            case MP_QSTR_mac:
                return mp_obj_new_bytes(eth.netif.hwaddr, 6);
            case MP_QSTR_mtu:
                return MP_OBJ_NEW_SMALL_INT(eth.netif.mtu);
            default:
                mp_raise_ValueError(MP_ERROR_TEXT("unknown config param"));
        }
    }
    mp_raise_TypeError(MP_ERROR_TEXT("query one param: config('mac') or config('mtu')"));
}
static MP_DEFINE_CONST_FUN_OBJ_KW(network_lan_config_obj, 1, network_lan_config);

static const mp_rom_map_elem_t network_lan_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_active), MP_ROM_PTR(&network_lan_active_obj) },
    { MP_ROM_QSTR(MP_QSTR_isconnected), MP_ROM_PTR(&network_lan_isconnected_obj) },
    { MP_ROM_QSTR(MP_QSTR_ifconfig), MP_ROM_PTR(&network_lan_ifconfig_obj) },
    { MP_ROM_QSTR(MP_QSTR_ipconfig), MP_ROM_PTR(&network_lan_ipconfig_obj) },
    { MP_ROM_QSTR(MP_QSTR_status), MP_ROM_PTR(&network_lan_status_obj) },
    { MP_ROM_QSTR(MP_QSTR_config), MP_ROM_PTR(&network_lan_config_obj) },
};
static MP_DEFINE_CONST_DICT(network_lan_locals_dict, network_lan_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    network_lan_type,
    MP_QSTR_LAN,
    MP_TYPE_FLAG_NONE,
    make_new, network_lan_make_new,
    print, network_lan_print,
    locals_dict, &network_lan_locals_dict
    );
