# On-board file helpers (MicroPython and CPython): write, read back and checksum a file,
# so the host can check a round trip without trusting one side's view.


def crc32(data, crc=0):
    # Small table-free CRC-32 (IEEE): boards without binascii.crc32 (micro:bit) can run it.
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)
    return len(data)


def read(name):
    with open(name, "rb") as f:
        return f.read()


def writer(name):
    # A file the host fills in pieces, one exec each (a 10 KB heap holds no 4 KB literal): write, close.
    return open(name, "wb")


def check(name, piece=256):
    # (length, CRC-32) of a file, read in pieces (it need not fit the heap)
    n, crc = 0, 0
    with open(name, "rb") as f:
        while True:
            data = f.read(piece)
            if not data:
                return n, crc
            n += len(data)
            crc = crc32(data, crc)


def roundtrip(name, data):
    write(name, data)
    back = read(name)
    return len(back), crc32(back)
