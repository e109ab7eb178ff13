"""The network layer, sans-I/O: Ethernet, ARP, IPv4 (with fragments), ICMP and UDP."""
