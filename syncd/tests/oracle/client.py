# Deterministic client connections from 198.18.1.1 with fixed ports.
import socket, sys, time
step = sys.argv[1]
if step == 'tcp':
    # cport 40001 -> VIP:80; 3 packets in (SYN, ACK, data) syncs ESTABLISHED; kept open.
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('198.18.1.1', int(sys.argv[2]))); s.connect(('198.18.0.1', int(sys.argv[3])))
    for m in (b'hello', b'again', b'third'):
        s.sendall(m); s.recv(100)
    time.sleep(float(sys.argv[4]))
    s.close()
elif step == 'udp':
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('198.18.1.1', 40002)); u.settimeout(2)
    for i in range(4):
        u.sendto(b'ping%d' % i, ('198.18.0.1', 53)); u.recvfrom(100)
