# A broken twin of hil_fs.py for the harness's own tests (tests/integration/test_suite_smoke.py):
# its write() keeps whole 512-byte sectors only, the off-by-a-sector bug a file of exactly 512
# bytes lets through.
from hil_fs import check, crc32, read  # the real module's  # noqa: F401


def write(name, data):
    with open(name, "wb") as f:
        f.write(data[: len(data) // 512 * 512])
    return len(data)


def roundtrip(name, data):
    write(name, data)
    back = read(name)
    return len(back), crc32(back)


class _Sectors:
    # writer()'s file, with the same bug: the last partial sector never reaches the file
    def __init__(self, name):
        self.f = open(name, "wb")  # noqa: SIM115 - closed by close(), like the real writer's file
        self.pending = b""

    def write(self, data):
        self.pending += data
        whole = len(self.pending) // 512 * 512
        if whole:
            self.f.write(self.pending[:whole])
            self.pending = self.pending[whole:]
        return len(data)

    def close(self):
        self.f.close()


def writer(name):
    return _Sectors(name)
