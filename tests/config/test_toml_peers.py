"""Unicast peers in a TOML file: `peers` and `min_ttl`, and what is refused, key by key."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tests.config.toml_helpers import HEAD, Raw, errors, load_text, vhost

IN = "vhost[0] (vhid 1): "


def test_peers_and_min_ttl_into_the_model(tmp_path: Path) -> None:
    text = (
        HEAD
        + "min_ttl = 200\n"
        + vhost(1, "10.0.0.100", peers=Raw('["198.51.100.224", "203.0.113.7"]'))
    )
    (config,) = load_text(tmp_path, text, check_machine=False).vhosts
    assert config.peers == (IPv4Address("198.51.100.224"), IPv4Address("203.0.113.7"))
    assert config.min_ttl == 200 and config.unicast  # min_ttl from [defaults]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"peers": Raw('["224.0.0.18"]')}, "peers: 224.0.0.18 is a multicast address"),
        ({"peers": Raw('["10.0.0.1"]')}, "peers: 10.0.0.1 is this host's own srcip"),
        ({"peers": Raw("[]")}, "peers: an empty list: leave peers out for multicast"),
        ({"peers": Raw("[1]")}, "peers: expected strings, got an integer (1)"),
        ({"peers": Raw('["198.51.100.300"]')}, "peers: "),
        ({"peers": "198.51.100.2"}, "peers: expected an array, got a string"),
        ({"min_ttl": 3}, "min_ttl: means nothing without peers"),
        ({"peers": Raw('["198.51.100.2"]'), "min_ttl": 0}, "min_ttl: 0 is outside 1..255"),
        ({"peers": Raw('["198.51.100.2"]'), "mcast": "224.0.0.18"}, "mcast: means nothing"),
        ({"peers": Raw('["198.51.100.2"]'), "nomcast": True}, "nomcast: means nothing"),
    ],
)
def test_bad_peers_name_the_key(tmp_path: Path, keys: dict[str, object], message: str) -> None:
    found = errors(tmp_path, HEAD + vhost(1, "10.0.0.100", **keys), check_machine=False)
    assert len(found) == 1 and found[0].startswith(IN + message), found
