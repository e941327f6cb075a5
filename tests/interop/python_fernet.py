"""Python side of the Fernet interoperability tests.

Reads a JSON list of operations on stdin and writes a JSON list of results on stdout. Uses
Python's `cryptography` package exactly as the Python Bifrost does: the Fernet key is
HKDF-SHA256 of BIFROST_SECRET_KEY with salt b"bifrost_secrets_v1" and info
b"bifrost-secrets-encryption", and a stored secret is base64url(Fernet token).

Operations:
  {"op": "derive", "secret": S}                         -> {"key": base64url key}
  {"op": "encrypt", "secret": S, "plaintext": P, "legacy": bool} -> {"token": T}
  {"op": "decrypt", "secret": S, "token": T, "legacy": bool}     -> {"plaintext": P} | {"error": E}
"""
import base64
import json
import sys

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"bifrost_secrets_v1",
                info=b"bifrost-secrets-encryption")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def run(op: dict) -> dict:
    key = derive(op["secret"])
    if op["op"] == "derive":
        return {"key": key.decode()}
    fernet = Fernet(key)
    if op["op"] == "encrypt":
        token = fernet.encrypt(op["plaintext"].encode())
        if op.get("legacy"):
            token = base64.urlsafe_b64encode(token)
        return {"token": token.decode()}
    if op["op"] == "decrypt":
        token = op["token"].encode()
        try:
            if op.get("legacy"):
                token = base64.urlsafe_b64decode(token)
            return {"plaintext": fernet.decrypt(token).decode()}
        except InvalidToken:
            return {"error": "InvalidToken"}
    raise ValueError("unknown op " + op["op"])


def main() -> None:
    ops = json.load(sys.stdin)
    json.dump([run(op) for op in ops], sys.stdout)


if __name__ == "__main__":
    main()
