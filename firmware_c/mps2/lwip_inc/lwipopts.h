// lwIP options for the mps2_an385 build: MicroPython's common set (extmod) plus an Ethernet
// board's sizes. The heap is megabytes here, so lwIP gets the "fast" profile.
#ifndef HIL_LWIPOPTS_H
#define HIL_LWIPOPTS_H

#define LWIP_NETIF_EXT_STATUS_CALLBACK  1
#define LWIP_NETIF_STATUS_CALLBACK      1
#define LWIP_IPV4                       1
#define LWIP_IPV6                       1
#define LWIP_ND6_NUM_DESTINATIONS       4
#define LWIP_ND6_QUEUEING               0
#define LWIP_RAND()                     hil_random_u32()

#define MEM_SIZE                        (32000)
#define TCP_MSS                         (1460)
// the LAN9118's RX FIFO holds about 6 full frames: a larger window only makes the host overrun it
#define TCP_WND                         (6 * TCP_MSS)
#define TCP_SND_BUF                     (8 * TCP_MSS)
#define MEMP_NUM_TCP_SEG                (64)
// Concurrent TCP sockets: the suites hold up to 32 at once. Closed connections then sit in
// TIME-WAIT (2 x TCP_MSL = 2 min) and fill the rest of the pool within a suite run; tcp_alloc()
// reclaims the oldest of those on demand, never an established connection, so 40 is enough
// (suites/sockets test_new_socket_at_the_limit_fails_and_held_connections_live_on).
#define MEMP_NUM_TCP_PCB                (40)
#define MEMP_NUM_TCP_PCB_LISTEN         (8)
#define PBUF_POOL_SIZE                  (32)

#include "extmod/lwip-include/lwipopts_common.h"

// Pool accounting (memp used/max/err) so network.LAN().status('pools') can say which pool ran out
#undef LWIP_STATS
#define LWIP_STATS                      1

extern uint32_t hil_random_u32(void);

#endif
