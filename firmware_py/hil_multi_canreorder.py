# Broken twin of hil_multi.can_send: a node whose transmit path swaps two queued frames (the 11th
# goes out before the 10th), as a driver with two mailboxes and no priority order can.
# tests/integration/test_suite_multi.py proves suites/multi catches it.
import hil_multi


def can_send(frames):
    frames = list(frames)
    if len(frames) > 11:
        frames[10], frames[11] = frames[11], frames[10]
    hil_multi.can_send(frames)
