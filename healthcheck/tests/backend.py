#!/usr/bin/env python3
"""Tiny real servers for the health-checker tests (run inside a test netns).

backend.py udp-echo IP PORT          answers every datagram with b"OK" + datagram
backend.py dns IP PORT               answers every query: same id, QR set, rcode 0
backend.py smtp IP PORT              220 banner, HELO -> 250, QUIT -> 221
backend.py https IP PORT DIR CERT KEY  HTTPS file server (TLS, self-signed)
"""
import http.server
import socket
import socketserver
import ssl
import sys
import functools

mode, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

if mode == "udp-echo":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(b"OK" + data, peer)

elif mode == "dns":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    while True:
        q, peer = s.recvfrom(2048)
        if len(q) < 12:
            continue
        # Header: id, flags (QR | RD | RA, rcode 0), counts as asked, no answers.
        flags = 0x8000 | (q[2] & 0x01) << 8 | 0x0080
        s.sendto(q[:2] + flags.to_bytes(2, "big") + q[4:6] + b"\0\0\0\0\0\0" + q[12:], peer)

elif mode == "smtp":
    class H(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 test ESMTP\r\n")
            for line in self.rfile:
                cmd = line.strip().upper()
                if cmd.startswith(b"HELO") or cmd.startswith(b"EHLO"):
                    self.wfile.write(b"250 hello\r\n")
                elif cmd == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"500 what\r\n")

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer((ip, port), H).serve_forever()

elif mode == "https":
    directory, cert, key = sys.argv[4], sys.argv[5], sys.argv[6]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer((ip, port), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()

else:
    sys.exit("unknown mode " + mode)
