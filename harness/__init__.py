"""hil: a hardware-in-the-loop test harness for MicroPython boards, emulated and real."""

__version__ = "0.1.0"
