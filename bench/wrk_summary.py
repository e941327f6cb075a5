#!/usr/bin/env python3
"""Reads the output of `wrk --latency` and prints one line: requests/s, p50 ms, p99 ms,
non-2xx responses and socket errors, separated by '|'.

Usage: wrk_summary.py WRK_OUTPUT_FILE
"""
import re
import sys

text = open(sys.argv[1]).read()


def field(pattern):
    match = re.search(pattern, text, re.M)
    if match is None:
        raise SystemExit(f"wrk_summary: cannot read wrk output ({pattern}):\n{text}")
    return match.group(1)


def ms(value):
    number = float(re.match(r"[\d.]+", value).group())
    unit = re.sub(r"[\d.]+", "", value)
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


rps = float(field(r"Requests/sec:\s+([\d.]+)"))
p50 = ms(field(r"^\s+50%\s+(\S+)"))
p99 = ms(field(r"^\s+99%\s+(\S+)"))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:(.*)", text)
print(f"{rps:.0f}|{p50:.2f}|{p99:.2f}|{non2xx.group(1) if non2xx else 0}|"
      f"{errors.group(1).strip() if errors else ''}")
