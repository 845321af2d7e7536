# Board facts for the harness. Must run on micro:bit MicroPython 1.9.2 (10 KB heap) too: keep tiny.
import sys

try:
    import gc
except ImportError:
    gc = None


def info():
    i = sys.implementation
    d = {"impl": i.name, "version": tuple(i.version), "platform": sys.platform}
    if gc and hasattr(gc, "mem_free"):
        d["mem_free"] = gc.mem_free()
        d["mem_alloc"] = gc.mem_alloc()
    return d


def echo(x):
    return x
