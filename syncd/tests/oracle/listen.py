# Joins the IPVS sync group on lo and writes every datagram as "src port hex" lines.
import socket, struct, sys, time
grp, port, secs, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((grp, port))
idx = socket.if_nametoindex('lo')
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack('4s4si', socket.inet_aton(grp), socket.inet_aton('0.0.0.0'), idx))
s.settimeout(0.5)
end = time.time() + secs
with open(path, 'w') as out:
    while time.time() < end:
        try:
            d, a = s.recvfrom(70000)
        except socket.timeout:
            continue
        out.write('%s %d %s\n' % (a[0], a[1], d.hex()))
        out.flush()
