"""The reference scenario: its two zones' vmadm manifests and the VIP they share.

zoneA and zoneB (198.51.100.201 and .202) share 198.51.100.200 (vhid 101,
password changeme, -z), as in ucarp.cfg.
"""

from __future__ import annotations

VIP = "198.51.100.200"
VHID = 101
PASSWORD = "changeme"

# The reference scenario's vmadm manifests (examples/smartos/zoneA.json and
# zoneB.json), built in so that an installed pycarp needs no files;
# tests/demo/test_demo_manifests.py keeps the two copies equal.
EMBEDDED_MANIFESTS: dict[str, dict[str, object]] = {
    alias: {
        "alias": alias,
        "hostname": alias,
        "brand": "joyent",
        "dns_domain": "example.com",
        "dataset_uuid": "d34c301e-10c3-11e4-9b79-5f67ca448df0",
        "resolvers": ["198.51.100.9", "198.51.100.10"],
        "max_physical_memory": 4096,
        "nics": [
            {
                "nic_tag": "admin",
                "ip": ip,
                "netmask": "255.255.255.0",
                "gateway": "198.51.100.1",
                "primary": True,
                "allow_ip_spoofing": True,
                "allow_mac_spoofing": True,
            }
        ],
    }
    for alias, ip in (("zoneA", "198.51.100.201"), ("zoneB", "198.51.100.202"))
}
