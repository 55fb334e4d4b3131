"""Real nodes for the node tests: a three-organisation consortium (+ dealer), each node its own
OS process (``python -m tessera.node DIR``) serving HTTPS on 127.0.0.1."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tessera.errors import TesseraError
from tessera.node.client import Client
from tessera.node.example import ANALYST, DEALER, ORGS, Consortium, build_consortium
from tessera.node.setup import read_profile


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out to outgoing connections and port-0 listeners."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_block(width: int = 160) -> int:
    """A base port such that the consortium's ports (base .. base + width) look free, below the
    ephemeral range: a port there can be taken between this check and the node's bind by any
    outgoing connection (another test's), and one was (a node failed with "address in use")."""
    top = min(_ephemeral_low(), 60000) - width
    for _ in range(50):
        base = random.randrange(10000, top)
        ok = True
        for port in range(base, base + width, 40):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


def launch_node(directory: Path, *, env: dict[str, str] | None = None, preexec_fn: Callable[[], None] | None = None,
                log_mode: str = "ab") -> subprocess.Popen[bytes]:
    """``python -m tessera.node DIR`` as its own process (output in ``DIR/stdout.log``), not waited for;
    ``env``: variables added to this process's environment."""
    with open(directory / "stdout.log", log_mode) as out:
        return subprocess.Popen([sys.executable, "-m", "tessera.node", str(directory)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=None if env is None else {**os.environ, **env}, preexec_fn=preexec_fn)


def wait_healthy(directory: Path, proc: subprocess.Popen[bytes], wait: float = 90.0) -> Client:
    """Poll the node's ``/health`` (with its admin profile) until it answers; RuntimeError with
    the end of its log if the process ends or ``wait`` seconds pass first. Returns the admin client."""
    admin = Client.from_profile(directory / "admin.toml")
    deadline = time.monotonic() + wait
    while True:
        try:
            admin.health()
            return admin
        except TesseraError as e:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node {directory.name} did not start:\n"
                                   + (directory / "stdout.log").read_text()[-3000:]) from e
            time.sleep(0.2)


def start_node(directory: Path, *, wait: float = 90.0, env: dict[str, str] | None = None,
               preexec_fn: Callable[[], None] | None = None, log_mode: str = "ab") -> subprocess.Popen[bytes]:
    """Start a node process and wait until its ``/health`` answers (:func:`launch_node`, :func:`wait_healthy`)."""
    proc = launch_node(directory, env=env, preexec_fn=preexec_fn, log_mode=log_mode)
    wait_healthy(directory, proc, wait)
    return proc


class NodeProc:
    def __init__(self, name: str, directory: Path, url: str) -> None:
        self.name, self.dir, self.url = name, directory, url
        self.proc: subprocess.Popen[bytes] | None = None


class Cluster:
    """Start, stop and kill the consortium's node processes; clients for analysts and owners."""

    def __init__(self, cons: Consortium) -> None:
        self.cons = cons
        self.nodes = {n: NodeProc(n, d, read_profile(d / "admin.toml")["url"]) for n, d in cons.nodes.items()}

    def start(self, name: str, wait: float = 90.0, env: dict[str, str] | None = None) -> None:
        node = self.nodes[name]
        node.proc = start_node(node.dir, wait=wait, env=env)

    def start_all(self, env: dict[str, dict[str, str]] | None = None) -> None:
        """Start every node (all at once, then wait for each); ``env``: extra environment per node."""
        procs = {n: launch_node(node.dir, env=(env or {}).get(n)) for n, node in self.nodes.items()}
        for n, proc in procs.items():
            self.nodes[n].proc = proc
        for n, proc in procs.items():
            wait_healthy(self.nodes[n].dir, proc)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.nodes[name].proc
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(30)

    def stop_all(self) -> None:
        for n in self.nodes:
            self.kill(n, signal.SIGTERM)

    def admin(self, name: str) -> Client:
        return Client.from_profile(self.nodes[name].dir / "admin.toml")

    def admin_token(self, name: str) -> str:
        return read_profile(self.nodes[name].dir / "admin.toml")["token"]

    def fingerprint(self, name: str) -> str:
        return read_profile(self.nodes[name].dir / "admin.toml")["fingerprint"]

    def analyst(self) -> Client:
        return Client.from_profile(self.cons.analyst_profile)


def make_cluster(root: Path, approval: dict[str, str] | None = None, rows: int = 6000,
                 psi_reveal: str = "intersection", dealer: bool = True) -> Cluster:
    cons = build_consortium(root, rows=rows, base_port=free_block(), approval=approval, psi_reveal=psi_reveal,
                            dealer=dealer)
    cluster = Cluster(cons)
    cluster.start_all()
    return cluster


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory):
    cluster = make_cluster(tmp_path_factory.mktemp("consortium"))
    try:
        yield cluster
    finally:
        cluster.stop_all()


__all__ = ["Cluster", "make_cluster", "ORGS", "DEALER", "ANALYST", "free_block", "launch_node", "wait_healthy",
           "start_node"]
