import socket, sys, os
path, out = sys.argv[1], sys.argv[2]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path)
with open(out, "ab", buffering=0) as f:
    while True:
        d = s.recv(65536); f.write(d + b"\n")
