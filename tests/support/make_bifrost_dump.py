#!/usr/bin/env python3
"""Writes CSV dumps of a Python Bifrost installation, for testing and benchmarking the import.

The files are what psql writes for

    \\copy (SELECT id, name FROM organizations) TO 'organizations.csv' CSV HEADER
    \\copy (SELECT id, key, value, config_type, description, organization_id, updated_by,
            updated_at, integration_id FROM configs) TO 'configs.csv' CSV HEADER

(docs/migrating-from-bifrost.md): a header row, commas, quotes only where needed (doubled
inside), LF line ends, NULL as an empty unquoted field, `value` as PostgreSQL prints JSONB
({"value": ...} with ", " and ": ", members ordered as jsonb orders them, non-ASCII as
UTF-8), timestamps as "2024-05-01 12:34:56.789012+00". Secrets are stored as the Python
Bifrost stores them: base64url(Fernet token) under HKDF-SHA256 (or, with --kdf pbkdf2,
PBKDF2-HMAC-SHA256 with 100,000 iterations) of the secret key, salt "bifrost_secrets_v1".

Also writes expected.json: every row as the import should store it, so a test can read each
value back:

    {"source_kdf": "hkdf", "organizations": [{"id", "name", "line"}],
     "configs": [{"org_id": id | null, "key", "type", "value" (canonical text), "line",
                  "config_id", "description", "updated_by", "updated_at" (RFC 3339 UTC
                  with microseconds)}],
     "integration_rows": N, "corrupt": {"line", "config_id", "key", "org_id"} | null,
     "counts": {"organizations": N, "configs": N, "by_type": {...}, "secrets": N}}

Needs Python 3 and the `cryptography` package. Deterministic for a given --seed (Fernet IVs
and timestamps aside).

    make_bifrost_dump.py --out DIR --secret-key-file KEY [--kdf hkdf|pbkdf2] [--orgs N]
        [--configs-per-org N] [--global-configs N] [--integration-rows N]
        [--no-integration-column] [--upper-case-types] [--types string,int,...]
        [--corrupt-secret] [--simple-values] [--seed N]

Benchmark sizes: --orgs 10000 --configs-per-org 10 --global-configs 0 --types secret
--simple-values --integration-rows 0 (100,000 secrets).
"""
import argparse
import base64
import csv
import datetime
import json
import os
import random
import sys
import uuid

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

SALT = b"bifrost_secrets_v1"
INFO = b"bifrost-secrets-encryption"


def fernet_for(secret: str, kdf: str) -> Fernet:
    if kdf == "hkdf":
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=INFO)
    else:
        derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=SALT, iterations=100000)
    return Fernet(base64.urlsafe_b64encode(derived.derive(secret.encode())))


class Raw:
    """JSON text written as it is (a number PostgreSQL keeps exactly, like 1.50)."""

    def __init__(self, text: str):
        self.text = text


def jsonb_text(value) -> str:
    """`value` as PostgreSQL prints a jsonb: ", " and ": ", members ordered by length of the
    name then bytewise, strings with only the escapes jsonb uses, non-ASCII as UTF-8."""
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + jsonb_text(value[k])
                               for k in names) + "}"
    raise TypeError(type(value))


TRICKY = 'a, "quoted", comma\nnew line\r\nCRLF 日本語 🔑 café \\ back\tslash'


def simple_values_for(kind: str, n: int, rng: random.Random):
    """Short, plain values of realistic size: for benchmarks."""
    if kind == "string":
        return f"https://service-{n}.example.com/api", f"https://service-{n}.example.com/api"
    if kind == "int":
        return n, str(n)
    if kind == "bool":
        return n % 2 == 0, "true" if n % 2 == 0 else "false"
    if kind == "json":
        doc = {"n": n, "tags": ["a", "b"]}
        return doc, jsonb_text(doc)
    token = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))
    return None, f"sk_live_{token}"


def values_for(kind: str, n: int, rng: random.Random):
    """(inner JSON value of {"value": ...}, canonical text Bifrost stores) for entry n of a
    type; secrets return the plaintext as the canonical text."""
    if kind == "string":
        choice = n % 4
        if choice == 0:
            return f"value-{n}", f"value-{n}"
        if choice == 1:
            return TRICKY, TRICKY
        if choice == 2:
            text = "https://example.com/?q=a,b&x=\"y\"\n" + "ü" * 200
            return text, text
        return "", ""
    if kind == "int":
        choice = n % 4
        if choice == 0:
            return 42 + n, str(42 + n)
        if choice == 1:
            return "-9223372036854775808", "-9223372036854775808"
        if choice == 2:
            return 9223372036854775807, "9223372036854775807"
        return " 007", "7"
    if kind == "bool":
        choice = n % 3
        if choice == 0:
            return True, "true"
        if choice == 1:
            return False, "false"
        return "False", "false"
    if kind == "json":
        choice = n % 4
        if choice == 0:
            doc = {"name": "Zoë, \"quoted\"", "list": [1, Raw("1.50"), None, True],
                   "big": Raw("123456789012345678901234567890"), "nested": {"a": {"b": [[]]}},
                   "text": "line\nbreak"}
            return doc, jsonb_text(doc)
        if choice == 1:
            doc = [{"id": i, "label": f"item {i} 🔑", "weights": [Raw("0.25"), i * 3]}
                   for i in range(300)]  # about 20 KB
            return doc, jsonb_text(doc)
        if choice == 2:
            return '{"as": "text", "n": [1, 2]}', '{"as": "text", "n": [1, 2]}'
        return "just a string", '"just a string"'
    if kind == "secret":
        choice = n % 4
        token = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
        if choice == 0:
            return None, f"sk_live_CANARY_{token}_{n}"
        if choice == 1:
            return None, f"pa$$, \"wörd\"\nwith new line 🔑 CANARY_{token}"
        if choice == 2:
            return None, "CANARY_" + token + "x" * 4000
        return None, f"CANARY_{token}"
    raise ValueError(kind)


def pg_timestamp(rng: random.Random):
    """A timestamptz as psql prints it, and the same instant as RFC 3339 UTC (microseconds)."""
    base = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
    instant = base + datetime.timedelta(seconds=rng.randrange(0, 4 * 365 * 86400),
                                        microseconds=rng.choice([0, 789000, 123456]))
    offset_minutes = rng.choice([0, 0, 330, -420, 60])
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    local = instant.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += (".%06d" % local.microsecond).rstrip("0")
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text += f"{sign}{hours:02d}" + (f":{minutes:02d}" if minutes else "")
    rfc = instant.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % instant.microsecond
    return text, rfc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the three files")
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--secret-key", help="the old installation's BIFROST_SECRET_KEY")
    key.add_argument("--secret-key-file", help="a file holding it (one trailing newline dropped)")
    parser.add_argument("--kdf", choices=["hkdf", "pbkdf2"], default="hkdf")
    parser.add_argument("--orgs", type=int, default=5)
    parser.add_argument("--configs-per-org", type=int, default=10)
    parser.add_argument("--global-configs", type=int, default=6)
    parser.add_argument("--integration-rows", type=int, default=3)
    parser.add_argument("--no-integration-column", action="store_true",
                        help="dump from a schema without configs.integration_id")
    parser.add_argument("--upper-case-types", action="store_true",
                        help="config_type as enum names (SECRET), as older schemas dump it")
    parser.add_argument("--types", default="string,int,bool,json,secret",
                        help="comma-separated types to cycle through")
    parser.add_argument("--corrupt-secret", action="store_true",
                        help="make one secret undecryptable (a flipped byte in its token)")
    parser.add_argument("--simple-values", action="store_true",
                        help="short plain values (a 40-byte secret, a URL, ...): for benchmarks")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    if args.secret_key is not None:
        secret = args.secret_key
    else:
        with open(args.secret_key_file, encoding="utf-8") as f:
            secret = f.read()
        if secret.endswith("\n"):
            secret = secret[:-1]
    fernet = fernet_for(secret, args.kdf)
    rng = random.Random(args.seed)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    os.makedirs(args.out, exist_ok=True)

    orgs = []
    for i in range(args.orgs):
        org_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = f"org {i:05d}" if i % 3 else f"Org {i:05d}, \"Ünïcödé\" & co"
        orgs.append({"id": org_id, "name": name, "line": i + 2})
    with open(os.path.join(args.out, "organizations.csv"), "w", newline="",
              encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "name"])
        for org in orgs:
            writer.writerow([org["id"], org["name"]])

    scopes = [None] * args.global_configs
    for org in orgs:
        scopes += [org["id"]] * args.configs_per_org
    configs = []
    counts = {t: 0 for t in ["string", "int", "bool", "json", "secret"]}
    rows = []
    corrupt = None
    per_type = {t: 0 for t in types}
    for index, org_id in enumerate(scopes):
        kind = types[index % len(types)]
        n = per_type[kind]
        per_type[kind] += 1
        inner, canonical = (simple_values_for if args.simple_values else values_for)(kind, n, rng)
        if kind == "secret":
            token = fernet.encrypt(canonical.encode())
            if args.corrupt_secret and corrupt is None and org_id is not None:
                raw = bytearray(token)
                raw[-5] = ord("A") if raw[-5] != ord("A") else ord("B")
                token = bytes(raw)
                corrupt = {"config_id": None, "key": None, "org_id": org_id}
            inner = base64.urlsafe_b64encode(token).decode()
        key = f"{kind}_{n}" if index % 5 else f"{kind.upper()}_Key_{n}"
        config_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        description = None if index % 3 == 0 else (
            TRICKY if index % 3 == 1 else f"Entry {index}: \"{kind}\", with commas")
        updated_by = None if index % 4 == 0 else f"user{index % 7}@example.com"
        pg_time, rfc_time = pg_timestamp(rng)
        config_type = kind.upper() if args.upper_case_types else kind
        rows.append([config_id, key, jsonb_text({"value": inner}), config_type, description,
                     org_id, updated_by, pg_time, None])
        entry = {"org_id": org_id, "key": key, "type": kind, "value": canonical,
                 "line": 0, "config_id": config_id, "description": description or "",
                 "updated_by": updated_by or "import", "updated_at": rfc_time}
        if corrupt is not None and corrupt["config_id"] is None:
            corrupt.update({"config_id": config_id, "key": key})
        configs.append(entry)
        counts[kind] += 1

    # Integration settings: skipped by the import, and counted.
    integration_rows = 0 if args.no_integration_column else args.integration_rows
    for i in range(integration_rows):
        org_id = orgs[i % len(orgs)]["id"] if orgs and i % 2 else None
        token = fernet.encrypt(f"integration-secret-{i}".encode())
        rows.append([str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"client_secret_{i}",
                     jsonb_text({"value": base64.urlsafe_b64encode(token).decode()}),
                     "SECRET" if args.upper_case_types else "secret", None, org_id,
                     "integration", pg_timestamp(rng)[0],
                     str(uuid.UUID(int=rng.getrandbits(128), version=4))])
    # Interleave the integration rows with the others, as a real table dump would.
    order = list(range(len(rows)))
    rng.shuffle(order)
    header = ["id", "key", "value", "config_type", "description", "organization_id",
              "updated_by", "updated_at", "integration_id"]
    if args.no_integration_column:
        header = header[:-1]
    line = 2
    lines_by_id = {}
    with open(os.path.join(args.out, "configs.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for i in order:
            row = rows[i][:len(header)]
            writer.writerow(row)
            lines_by_id[row[0]] = line
            # A record spans one line per line end inside its quoted fields.
            line += 1 + sum(str(v).count("\n") for v in row if v is not None)
    for entry in configs:
        entry["line"] = lines_by_id[entry["config_id"]]
    if corrupt is not None:
        corrupt["line"] = lines_by_id[corrupt["config_id"]]

    expected = {
        "source_kdf": args.kdf,
        "organizations": orgs,
        "configs": configs,
        "integration_rows": integration_rows,
        "corrupt": corrupt,
        "counts": {"organizations": len(orgs), "configs": len(configs), "by_type": counts,
                   "secrets": counts["secret"]},
    }
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
