#!/usr/bin/env python3
"""Network peers for scripts/check_container.sh, so that the image's name resolution and TLS
are checked without the internet:

    container_peers.py dns HOST:PORT SUFFIX ADDR      # answers A queries for *SUFFIX with ADDR
    container_peers.py tls HOST:PORT CERT KEY         # HTTPS, 200 with a small body on any GET

The DNS server answers every name ending in SUFFIX with ADDR and every other name with
NXDOMAIN, so that a lookup which reaches the real resolver instead fails (that is how the check
tells that the container asked this server). Standard library only.
"""
import http.server
import socket
import ssl
import struct
import sys


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def dns(listen, suffix, answer):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(addr(listen))
    print("dns ready", flush=True)
    while True:
        query, peer = sock.recvfrom(512)
        if len(query) < 17:
            continue
        tid = struct.unpack("!H", query[:2])[0]
        i, labels = 12, []
        while i < len(query) and query[i]:
            n = query[i]
            labels.append(query[i + 1 : i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        if i + 5 > len(query):
            continue
        qtype = struct.unpack("!H", query[i + 1 : i + 3])[0]
        question = query[12 : i + 5]
        name = ".".join(labels).lower()
        known = name == suffix or name.endswith("." + suffix)
        record = b""
        if known and qtype == 1:
            record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(answer)
        rcode = 0 if known else 3
        header = struct.pack("!HHHHHH", tid, 0x8180 | rcode, 1, 1 if record else 0, 0, 0)
        sock.sendto(header + question + record, peer)


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello over TLS\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def tls(listen, cert, key):
    server = http.server.HTTPServer(addr(listen), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("tls ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "dns":
        dns(sys.argv[2], sys.argv[3].lower(), sys.argv[4])
    elif len(sys.argv) == 5 and sys.argv[1] == "tls":
        tls(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
