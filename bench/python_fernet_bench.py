"""Reference: Python `cryptography` Fernet encrypt/decrypt of the same 32-byte secret.

Prints one JSON object: operations per second for encrypt and decrypt on one thread, the
best of several timed repeats (as Google Benchmark reports a steady-state rate).
"""
import json
import sys
import time

import cryptography
from cryptography.fernet import Fernet

KEY = b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
SECRET = b"sk_live_0123456789abcdefghijklmn"
assert len(SECRET) == 32


def rate(fn, min_seconds: float) -> float:
    best = 0.0
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        while True:
            for _ in range(1000):
                fn()
            n += 1000
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, n / elapsed)
    return best


def main() -> None:
    min_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    f = Fernet(KEY)
    token = f.encrypt(SECRET)
    assert f.decrypt(token) == SECRET
    print(json.dumps({
        "python": sys.version.split()[0],
        "cryptography": cryptography.__version__,
        "encrypt_per_s": rate(lambda: f.encrypt(SECRET), min_seconds),
        "decrypt_per_s": rate(lambda: f.decrypt(token), min_seconds),
    }))


if __name__ == "__main__":
    main()
