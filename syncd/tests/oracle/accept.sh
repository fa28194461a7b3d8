# The kernel's backup daemon fed a message made by xlvs' encoder (syncd/tests/kernel_wire.rs).
ip addr add 198.18.0.1/32 dev lo
ipvsadm -A -t [2001:db8:100::1]:80 -s rr
ipvsadm -a -t [2001:db8:100::1]:80 -r [2001:db8:2::2]:80 -g
ipvsadm -A -f 5 -s rr
ipvsadm -a -f 5 -r 198.18.1.2:53 -g
ipvsadm -A -t 198.18.0.1:82 -s rr -p 300
ipvsadm -a -t 198.18.0.1:82 -r 198.18.1.2:8080 -m
ipvsadm --start-daemon backup --mcast-interface lo --syncid 7
sleep 1
python3 - <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack('4s4si', socket.inet_aton('224.0.0.81'), socket.inet_aton('0.0.0.0'), socket.if_nametoindex('lo')))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
s.sendto(bytes.fromhex('000700bc04010000010600480000008300019c4a00500050000000000000038420010db800010000000000000000000220010db801000000000000000000000120010db8000200000000000000000002001100240000018300009c4b00350035000000050000012cc6120101c6120001c612010200060024000011000001000000521f90000000000000012cc6120101c6120001c6120102000600240000010000059c4c00521f900000000000000078c6120101c6120001c6120102'), ('224.0.0.81', 8848))
PY
sleep 2
ipvsadm -Lcn
ipvsadm -Ln
ipvsadm --stop-daemon backup
