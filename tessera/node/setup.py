"""Setting up a node directory: identity, API certificate, configuration, access profiles.

``init_node`` writes, in the node directory::

    (the directory and keys/ are 0700: accessible by the node's owner only)
    node.toml            the configuration (0600; holds token hashes only)
    keys/NAME.key|.crt   the Ed25519 identity (MPC links, signatures)
    keys/NAME.api.*      the API's TLS certificate (P-256)
    party.toml           this node's entry for the contract (addresses, fingerprints, public key)
    admin.toml           an access profile with the admin token (0600)

A *profile* (TOML: ``url``, ``fingerprint``, ``token``, ``name``) is what the analyst client
and ``tessera job ...`` read to reach a node.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from tessera.governance.contract import PartySpec
from tessera.net.identity import Identity, write_private
from tessera.node.apicert import api_fingerprint, create_api_certificate
from tessera.node.config import ConfigError, DatasetSource, NodeConfig, hash_token, new_token

__all__ = ["init_node", "add_analyst", "party_entry", "write_profile", "read_profile"]

CONFIG_FILE = "node.toml"


def write_profile(path: str | os.PathLike[str], url: str, fingerprint: str, token: str, name: str) -> None:
    write_private(path, tomli_w.dumps({"name": name, "url": url, "fingerprint": fingerprint, "token": token}).encode())


def read_profile(path: str | os.PathLike[str]) -> dict[str, str]:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no profile {p}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from None
    missing = [k for k in ("url", "fingerprint", "token") if k not in data]
    if missing:
        raise ConfigError(f"profile {p} lacks {missing}")
    return {k: str(v) for k, v in data.items()}


def init_node(
    directory: str | os.PathLike[str],
    name: str,
    *,
    api_port: int,
    mpc_ports: tuple[int, int],
    host: str = "127.0.0.1",
    role: str = "party",
    datasets: dict[str, dict[str, Any]] | None = None,
    approval: str = "auto",
    overwrite: bool = False,
) -> tuple[NodeConfig, str]:
    """Create a node directory; returns the configuration and the admin token (shown once)."""
    d = Path(directory)
    if (d / CONFIG_FILE).exists() and not overwrite:
        raise ConfigError(f"{d / CONFIG_FILE} exists; refusing to overwrite it")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    d.chmod(0o700)  # the node's directory (keys, configuration, state) is its owner's only
    (d / "keys").mkdir(mode=0o700, exist_ok=True)
    (d / "keys").chmod(0o700)
    ident = Identity.create(name, d / "keys", overwrite=overwrite)
    api_fp = create_api_certificate(d / "keys", name, [host])
    admin = new_token()
    cfg = NodeConfig(name=name, role=role, api_host=host, api_port=api_port, mpc_ports=mpc_ports,  # type: ignore[arg-type]
                     approval=approval, admin_token_sha256=hash_token(admin),  # type: ignore[arg-type]
                     datasets={k: DatasetSource(**v) for k, v in (datasets or {}).items()})
    cfg.save(d / CONFIG_FILE)
    entry = PartySpec(name=name, address=f"{host}:{mpc_ports[0]}", fingerprint=ident.fingerprint,
                      public_key=ident.public_key, role=role, api=f"https://{host}:{api_port}",  # type: ignore[arg-type]
                      api_fingerprint=api_fp)
    (d / "party.toml").write_text(tomli_w.dumps(entry.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    write_profile(d / "admin.toml", f"https://{host}:{api_port}", api_fp, admin, name)
    return cfg, admin


def party_entry(directory: str | os.PathLike[str]) -> PartySpec:
    """This node's entry for the contract (read from ``party.toml``, checked against its keys)."""
    d = Path(directory)
    cfg = NodeConfig.load(d / CONFIG_FILE)
    entry = PartySpec.model_validate(tomllib.loads((d / "party.toml").read_text(encoding="utf-8")))
    ident = Identity.load(cfg.path(cfg.identity_dir), cfg.name)
    if entry.fingerprint != ident.fingerprint or entry.api_fingerprint != api_fingerprint(cfg.path(cfg.identity_dir), cfg.name):
        raise ConfigError(f"{d / 'party.toml'} does not match the node's keys")
    return entry


def add_analyst(directory: str | os.PathLike[str], analyst: str, profile: str | os.PathLike[str] | None = None) -> str:
    """Give ``analyst`` a new API token at this node (replacing an old one); returns the token
    and, if ``profile`` is given, writes an access profile there."""
    d = Path(directory)
    cfg = NodeConfig.load(d / CONFIG_FILE)
    token = new_token()
    cfg.analysts = {**cfg.analysts, analyst: hash_token(token)}
    cfg.save(d / CONFIG_FILE)
    if profile is not None:
        entry = party_entry(d)
        write_profile(profile, entry.api or "", entry.api_fingerprint or "", token, analyst)
    return token
