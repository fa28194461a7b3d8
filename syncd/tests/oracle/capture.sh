set -x
cp /job/*.py /root/
ip addr add 198.18.0.1/32 dev lo
ip netns add real
ip link add vh type veth peer name vr
ip link set vr netns real
ip addr add 198.18.1.1/24 dev vh; ip link set vh up
ip netns exec real ip addr add 198.18.1.2/24 dev vr
ip netns exec real ip link set vr up; ip netns exec real ip link set lo up
ip netns exec real ip route add default via 198.18.1.1
sysctl -w net.ipv4.vs.conntrack=0 >/dev/null 2>&1
sysctl net.ipv4.vs.sync_threshold net.ipv4.vs.sync_period net.ipv4.vs.sync_version net.ipv4.vs.sync_refresh_period net.ipv4.vs.sync_persist_mode net.ipv4.vs.sync_ports
ipvsadm -A -t 198.18.0.1:80 -s rr
ipvsadm -a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m
ipvsadm -A -u 198.18.0.1:53 -s rr
ipvsadm -a -u 198.18.0.1:53 -r 198.18.1.2:5353 -m
ipvsadm -A -t 198.18.0.1:82 -s rr -p 300
ipvsadm -a -t 198.18.0.1:82 -r 198.18.1.2:8080 -m
ipvsadm -Ln
(ip netns exec real python3 /root/peer.py &) 
python3 /root/listen.py 224.0.0.81 8848 30 /job/out/sync-capture.txt &
LP=$!
sleep 1
ipvsadm --start-daemon master --mcast-interface lo --syncid 7
ipvsadm -L --daemon
python3 /root/client.py tcp 40001 80 4 &
C1=$!
sleep 1
python3 /root/client.py udp
python3 /root/client.py tcp 40003 82 0.5
sleep 1
ipvsadm -Lcn
wait $C1
sleep 1
ipvsadm -Lcn
sleep 4
ipvsadm -Lcn
ipvsadm --stop-daemon master
kill $LP
cat /job/out/sync-capture.txt
dmesg | grep -i ipvs | tail
