#!/usr/bin/env python3
"""Counts the pages a raw store holds, read by hand (not by etl): the whole records of its page
log (`pages.log`: `@page <header JSON>\\n<bytes>\\n` each, the last record of a position
counting once) plus the pages of the older layout (`page-NNNN.*` beside `.meta.json`).

    raw_pages.py RAW_STORE_DIR          (prints the count)
"""
import json
import os
import sys


def log_pages(root):
    try:
        data = open(os.path.join(root, "pages.log"), "rb").read()
    except FileNotFoundError:
        return set()
    pages, at = set(), 0
    while True:
        nl = data.find(b"\n", at)
        if nl < 0 or not data.startswith(b"@page ", at):
            break
        try:
            header = json.loads(data[at + 6 : nl])
        except ValueError:
            break
        end = nl + 1 + header["bytes"]
        if end >= len(data) or data[end : end + 1] != b"\n":
            break
        pages.add((header["stream"], header["via"], header["index"]))
        at = end + 1
    return pages


def file_pages(root):
    found = set()
    for directory, _, files in os.walk(root):
        for name in files:
            if name.endswith(".meta.json") and not name.startswith("."):
                found.add(os.path.join(directory, name))
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(len(log_pages(sys.argv[1])) + len(file_pages(sys.argv[1])))
