# Bring up a firmware's own network interface (lwIP boards: network.LAN) and say why when it
# cannot: the harness calls up() once the REPL answers and reports the line as a boot error.
# Boards whose OS configures the network (the unix port under Linux) never import this.
import time

import network


def up(addr=None, gw=None, timeout_ms=10000):
    """Activate the LAN; static addr ("a.b.c.d/nn") and gateway, else DHCP. Returns the address."""
    lan = network.LAN()
    lan.active(True)
    if addr:
        lan.ipconfig(dhcp4=False)
        lan.ipconfig(addr4=addr, gw4=gw)
    start = time.ticks_ms()
    while lan.status() != 3:
        if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
            if lan.status() == 0:
                raise OSError(f"link down: no carrier on the LAN after {timeout_ms} ms")
            raise OSError(f"no DHCP lease after {timeout_ms} ms (link up, no address)")
        time.sleep_ms(10)
    print("NET", lan.ipconfig("addr4")[0], time.ticks_diff(time.ticks_ms(), start))
    return lan.ipconfig("addr4")[0]


def counters():
    lan = network.LAN()
    return {k: lan.status(k) for k in ("rx_frames", "tx_frames", "rx_dropped", "rx_errors")}
