"""The man pages' descriptions of the TOML keys agree with the loader and the model.

Which keys have an entry is tests/cli/test_manpage.py's; here: a default
written as a TOML value is the key's type and the model's own default, the
required keys are the loader's, and docs/config.md names every key too.
"""

from __future__ import annotations

import dataclasses
import re
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pycarp.cli.manpage import toml_literal
from pycarp.config import tomlkeys
from pycarp.config.keydocs import CHECK_DOCS, HOST_DOCS, PROCESS_DOCS, REQUIRED, KeyDoc
from pycarp.config.settings import DaemonSettings
from pycarp.core.checkconfig import CheckConfig
from pycarp.core.config import VirtualHostConfig

CONFIG_MD = Path(__file__).resolve().parents[2] / "docs" / "config.md"
# The model's field of a key whose name differs.
FIELD_OF = {"mcast": "group"}
# Keys the model keeps in other units: advert_int's seconds are centiseconds there.
SCALE = {"advert_int": 100}
PLACES: list[tuple[str, dict[str, tomlkeys.KeyType], dict[str, KeyDoc], type]] = [
    ("process", tomlkeys.PROCESS_KEYS, PROCESS_DOCS, DaemonSettings),
    ("host", tomlkeys.HOST_KEYS, HOST_DOCS, VirtualHostConfig),
    ("check", tomlkeys.CHECK_KEYS, CHECK_DOCS, CheckConfig),
]


def _model_default(model: type, field: str) -> object:
    """The dataclass's default of ``field``, in TOML's terms; MISSING if it has none."""
    found = {f.name: f for f in dataclasses.fields(model)}.get(field)
    if found is None or found.default is dataclasses.MISSING:
        return dataclasses.MISSING
    value = found.default
    if isinstance(value, IPv4Address):
        return str(value)
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize(("place", "keys", "docs", "model"), PLACES, ids=[p[0] for p in PLACES])
def test_a_documented_default_is_the_models(
    place: str, keys: dict[str, tomlkeys.KeyType], docs: dict[str, KeyDoc], model: type
) -> None:
    compared = 0
    for key, doc in docs.items():
        value = toml_literal(doc.default) if doc.default else None
        if value is None or key not in keys:
            continue  # words ("none: multicast"); a key without its table is the other test's
        assert tomlkeys.wrong_type(value, keys[key]) is None, f"{place} {key}: {doc.default}"
        default = _model_default(model, FIELD_OF.get(key, key))
        if default is dataclasses.MISSING:
            continue  # no field of its own (virtual_mac) or a computed default
        if key in SCALE and isinstance(value, int | float):
            value = round(value * SCALE[key])
        assert value == default, f"keydocs.py says {key} = {doc.default}, the model {default!r}"
        compared += 1
    assert compared >= 4


def test_the_required_host_keys_are_the_loaders() -> None:
    documented = {key for key, doc in HOST_DOCS.items() if doc.default == REQUIRED}
    assert documented == set(tomlkeys.REQUIRED)


def test_docs_config_md_names_every_key() -> None:
    text = CONFIG_MD.read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z_]+)`", text))
    for _, keys, _, _ in PLACES:
        missing = [key for key in keys if key not in named]
        assert not missing, f"docs/config.md does not describe {', '.join(missing)}"
