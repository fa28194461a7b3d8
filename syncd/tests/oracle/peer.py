# Tiny reals inside netns "real": TCP echo on 8080, UDP echo on 5353.
import socket, threading
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('198.18.1.2', 8080)); s.listen(8)
    while True:
        c, _ = s.accept()
        def serve(c):
            while True:
                d = c.recv(4096)
                if not d: break
                c.sendall(d)
            c.close()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('198.18.1.2', 5353))
    while True:
        d, a = u.recvfrom(4096); u.sendto(d, a)
threading.Thread(target=udp, daemon=True).start()
tcp()
