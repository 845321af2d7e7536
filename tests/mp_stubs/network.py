# A stand-in for the network module of boards with their own IP stack (network.LAN), so that
# firmware_py modules written for them (hil_net) run under MicroPython's unix port, which has
# no network module. Scripted, not emulated: `statuses` are what LAN().status() answers in turn
# (the last one repeats) and `log` records every call. Board behaviour is tested on real boards.
statuses = [3]  # 0 down, 1 link up without an address, 3 link up with an address
log = []
ADDR = "10.0.2.15"
_COUNTERS = {"rx_frames": 7, "tx_frames": 5, "rx_dropped": 0, "rx_errors": 0}


class LAN:
    def active(self, on=None):
        log.append(("active", on))
        return True

    def ipconfig(self, *args, **kwargs):
        if args:  # a query: ipconfig("addr4") -> (address, netmask)
            return (ADDR, "255.255.255.0")
        log.append(("ipconfig", sorted(kwargs.items())))

    def status(self, param=None):
        if param is not None:
            return _COUNTERS[param]
        return statuses.pop(0) if len(statuses) > 1 else statuses[0]
