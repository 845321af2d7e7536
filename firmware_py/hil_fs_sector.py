# A broken twin of hil_fs.py for the harness's own tests (tests/integration/test_suite_smoke.py):
# its write() keeps whole 512-byte sectors only, the off-by-a-sector bug a file of exactly 512
# bytes lets through.
from hil_fs import crc32, read  # the real module's


def write(name, data):
    with open(name, "wb") as f:
        f.write(data[: len(data) // 512 * 512])
    return len(data)


def roundtrip(name, data):
    write(name, data)
    back = read(name)
    return len(back), crc32(back)
