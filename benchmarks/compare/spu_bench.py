"""SecretFlow SPU 0.9.5 (ABY3, Z_2^64) on Tessera's ``mul`` and ``corr`` workloads, three processes.

Not part of Tessera: run it from an SPU venv (see README.md in this folder)::

    /tmp/venv-spu/bin/python benchmarks/compare/spu_bench.py -w mul --n 1000000 --repeat 3
    /tmp/venv-spu/bin/python benchmarks/compare/spu_bench.py -w corr --n 1000000 --repeat 3

The driver compiles the JAX function to SPU's IR and secret-shares the inputs (SPU's ``Io``),
like Tessera's workloads, whose inputs are shared before the clock starts. It then starts three
party processes (``--party R``) that link over brpc on 127.0.0.1 (plain TCP: SPU's link has no TLS
configured here, Tessera's runs over mutual TLS) and each time ``Runtime.run`` after a link
barrier. A run's time is the slowest party's; the median over runs is printed as one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np


def _ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _config() -> Any:
    import spu.libspu as libspu

    return libspu.RuntimeConfig(protocol=libspu.ProtocolKind.ABY3, field=libspu.FieldType.FM64)


def _workload(name: str, n: int) -> tuple[Any, list[np.ndarray], Any]:
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(17)
    if name == "mul":
        return (lambda a, b: a * b), [rng.normal(size=n), rng.normal(size=n)], lambda a, b: a * b

    def corr(a: Any, b: Any) -> Any:
        x = jnp.stack([a, b])
        gram = (x @ x.T) / n
        mean = jnp.sum(x, axis=1) / n
        cov = gram - jnp.outer(mean, mean)
        inv_sd = lax.rsqrt(jnp.stack([cov[0, 0], cov[1, 1]]))
        return cov[0, 1] * inv_sd[0] * inv_sd[1]

    col = rng.normal(size=n)
    other = 0.6 * col + 0.8 * rng.normal(size=n)
    return corr, [col, other], lambda a, b: np.corrcoef(a, b)[0, 1]


def driver(args: argparse.Namespace) -> None:
    import spu.libspu as libspu
    import spu.utils.frontend as fe
    from spu import api

    fn, inputs, plain = _workload(args.workload, args.n)
    names = [f"in{i}" for i in range(len(inputs))]
    t0 = time.perf_counter()
    executable, _ = fe.compile(fe.Kind.JAX, fn, inputs, {}, names, [libspu.Visibility.VIS_SECRET] * len(inputs),
                               lambda outs: [f"out{i}" for i in range(len(outs))])
    compile_s = time.perf_counter() - t0
    io = api.Io(3, _config())
    shares = [io.make_shares(np.asarray(x), libspu.Visibility.VIS_SECRET) for x in inputs]
    ports = _ports(3)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(3):
            _write(os.path.join(tmp, f"job{r}.json"),
                   {"exe": _b64(executable.SerializeToString()), "ports": ports, "repeat": args.repeat,
                    "inputs": [(nm, _b64(s[r].meta), [_b64(c) for c in s[r].share_chunks])
                               for nm, s in zip(names, shares)]})
        procs = [subprocess.Popen([sys.executable, __file__, "--party", str(r), "--job", tmp]) for r in range(3)]
        if any(p.wait(timeout=3600) for p in procs):
            raise SystemExit("an SPU party failed")
        outs = [_read(os.path.join(tmp, f"out{r}.json")) for r in range(3)]
    per_run = [max(o["times"][i] for o in outs) for i in range(args.repeat)]
    result = io.reconstruct([_share(libspu, o["meta"], o["chunks"]) for o in outs])
    expect = plain(*inputs)
    print(json.dumps({"peer": "spu-0.9.5-aby3", "workload": args.workload, "n": args.n,
                      "seconds": round(statistics.median(per_run), 4), "times": [round(t, 4) for t in per_run],
                      "compile_seconds": round(compile_s, 3),
                      "max_abs_error": float(np.max(np.abs(np.asarray(result) - expect)))}))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write(path: str, obj: dict[str, object]) -> None:
    with open(path, "w") as f:
        json.dump(obj, f)


def _read(path: str) -> dict[str, Any]:
    with open(path) as f:
        return dict(json.load(f))


def _share(libspu: Any, meta: str, chunks: list[str]) -> Any:
    """A ``libspu.Share`` from its base64 meta and chunks (the files between driver and parties)."""
    s = libspu.Share()
    s.meta = base64.b64decode(meta)
    s.share_chunks = [base64.b64decode(c) for c in chunks]
    return s


def party(rank: int, tmp: str) -> None:
    import spu.libspu as libspu
    from spu import api

    job = _read(os.path.join(tmp, f"job{rank}.json"))
    desc = libspu.link.Desc()
    desc.recv_timeout_ms = 3_600_000
    for r, port in enumerate(job["ports"]):
        desc.add_party(f"P{r}", f"127.0.0.1:{port}")
    link = libspu.link.create_brpc(desc, rank)
    rt = api.Runtime(link, _config())
    exe = libspu.Executable()
    exe.ParseFromString(base64.b64decode(job["exe"]))
    times = []
    for _ in range(job["repeat"]):
        for name, meta, chunks in job["inputs"]:
            rt.set_var(name, _share(libspu, meta, chunks))
        link.barrier()  # all parties start together
        t = time.perf_counter()
        rt.run(exe)
        times.append(time.perf_counter() - t)
    out = rt.get_var(exe.output_names[0])
    _write(os.path.join(tmp, f"out{rank}.json"),
           {"times": times, "meta": _b64(out.meta), "chunks": [_b64(c) for c in out.share_chunks]})
    link.stop_link()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-w", "--workload", choices=["mul", "corr"], default="mul")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--party", type=int, default=None)
    ap.add_argument("--job", default=None)
    a = ap.parse_args()
    if a.party is None:
        driver(a)
    else:
        party(a.party, a.job)
