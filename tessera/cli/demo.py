"""``tessera demo``: three banks compute fraud statistics together over mutual TLS."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tessera.data.synthetic import bank_transactions, vertical_fraud
from tessera.errors import TesseraError
from tessera.jobs.local import run_local


def demo(
    rows: int = typer.Option(30_000, "--rows", help="Transactions in total, split 40/35/25 across banks."),
    protocol: str = typer.Option("rep3", "--protocol", help="rep3 or semi2k."),
    scenario: str = typer.Option(
        "fraud", "--scenario", help="fraud (horizontal, three banks), two-banks (horizontal, two banks, no "
        "dealer: semi2k with OT preprocessing) or vertical-fraud (two banks, PSI + model)."
    ),
) -> None:
    """Three banks, each with its own transactions, compute the row count, mean and standard
    deviation of the amount, and the correlation of amount with fraud, as separate processes
    over mutual TLS; each result is printed next to the plaintext answer on the pooled data."""
    console = Console()
    if scenario == "vertical-fraud":
        _vertical(console, rows)
        return
    if scenario not in ("fraud", "two-banks"):
        console.print(f"[red]unknown scenario {scenario!r}[/red]")
        raise typer.Exit(2)
    preprocessing = None
    if scenario == "two-banks":  # two organisations and no third machine: no dealer
        frames, schema, _ = bank_transactions(rows, banks=("bank_a", "bank_b"), weights=(0.55, 0.45))
        protocol, preprocessing = "semi2k", "ot"
    else:
        frames, schema, _ = bank_transactions(rows)
    pooled = pd.concat(frames.values(), ignore_index=True)
    how = ", no dealer: the two make every correlation by oblivious transfer" if preprocessing == "ot" else ""
    console.print(f"[bold]Tessera demo[/bold]: {len(frames)} banks, protocol {protocol}{how}; parties as separate "
                  "processes over mutual TLS 1.3 with pinned certificates")
    for bank, df in frames.items():
        console.print(f"  {bank}: {len(df):,} transactions (stay at the bank)")
    start = time.perf_counter()
    try:
        with console.status("describe(amount): local reductions, secure sums, secure sqrt ..."):
            desc = run_local("describe", frames, schema, protocol=protocol, preprocessing=preprocessing,
                             columns=["amount"])
        with console.status("correlation(amount, is_fraud): secure covariance and inverse sqrt ..."):
            corr = run_local("correlation", frames, schema, protocol=protocol, preprocessing=preprocessing,
                             columns=["amount", "is_fraud"])
    except TesseraError as e:
        console.print(f"[red]failed: {e}[/red]")
        raise typer.Exit(1) from None
    wall = time.perf_counter() - start
    amount = pooled["amount"]
    checks = [
        ("row count", desc["count"], len(pooled), 0.0, "exact"),
        ("mean amount", desc["amount"]["mean"], amount.mean(), 1e-6 * abs(amount.mean()), "rel 1e-6"),
        ("std of amount", desc["amount"]["std"], amount.std(), 1e-4 * amount.std(), "rel 1e-4"),
        ("corr(amount, is_fraud)", corr["correlation"][0, 1],
         np.corrcoef(amount, pooled["is_fraud"].astype(float))[0, 1], 1e-4, "abs 1e-4"),
    ]
    table = Table(title="jointly computed vs plaintext on the pooled data (which no party has)")
    for col in ("quantity", "secure", "plaintext", "|diff|", "tolerance", "ok"):
        table.add_column(col)
    ok_all = True
    for name, got, want, tol, tol_text in checks:
        ok = abs(float(got) - float(want)) <= tol
        ok_all &= ok
        table.add_row(name, f"{float(got):.6g}", f"{float(want):.6g}", f"{abs(float(got) - float(want)):.2g}",
                      tol_text, "[green]yes[/green]" if ok else "[red]NO[/red]")
    console.print(table)
    sent = {p: desc.comm[p]["bytes_sent"] + corr.comm[p]["bytes_sent"] for p in desc.comm}
    console.print("bytes sent: " + ", ".join(f"{p} {b / 1e3:.1f} kB" for p, b in sent.items()))
    console.print(escape(f"revealed: {'; '.join(desc.revealed + corr.revealed)}"))
    console.print(f"wall time: {wall:.2f} s (two jobs, including process start-up and TLS set-up)")
    if not ok_all:
        console.print("[red]some results are outside their tolerance[/red]")
        raise typer.Exit(1)
    console.print("[green]all results match the plaintext answers[/green]")


def _vertical(console: Console, rows: int) -> None:
    """Bank A holds features, bank B fraud labels for 60% of A's customers (plus others): a PSI on
    the customer id aligns the common rows, then a logistic regression is trained jointly."""
    feats = ["amount", "merchant_risk", "hour", "account_age_days"]
    frames, schema, _, join = vertical_fraud(rows)
    console.print("[bold]Tessera demo[/bold] (vertical-fraud): bank_a holds features of "
                  f"{len(frames['bank_a']):,} customers, bank_b fraud labels of {len(frames['bank_b']):,}; "
                  "separate processes over mutual TLS, semi2k with a dealer")
    start = time.perf_counter()
    try:
        with console.status("PSI on customer_id, then logistic regression on the secret-shared aligned rows ..."):
            res = run_local("logistic_regression", frames, schema, protocol="semi2k", partition="vertical",
                            psi_mode="intersection", join_key="customer_id",
                            features=feats, target="is_fraud")
    except TesseraError as e:
        console.print(f"[red]failed: {e}[/red]")
        raise typer.Exit(1) from None
    wall = time.perf_counter() - start
    x = join[feats].astype(float).to_numpy()
    y = join["is_fraud"].to_numpy(dtype=float)
    want = _plain_logistic(x, y)
    got = res["coefficients"]
    acc_secure = float(np.mean(((got[0] + x @ got[1:]) > 0) == (y > 0.5)))
    acc_plain = float(np.mean(((want[0] + x @ want[1:]) > 0) == (y > 0.5)))
    table = Table(title="joint model vs plaintext model on the true join (which no bank has)")
    for col in ("quantity", "secure", "plaintext", "ok"):
        table.add_column(col)
    checks: list[tuple[str, Any, Any, bool]] = [("common customers (PSI)", res.per_party["bank_a"]["psi_size"], len(join), True)]
    for name, g, w in zip(["intercept", *feats], got, want):
        checks.append((f"coef {name}", g, w, abs(g - w) <= 1e-2 * abs(w) + 1e-6))
    checks.append(("accuracy", acc_secure, acc_plain, abs(acc_secure - acc_plain) <= 0.01))
    checks[0] = (checks[0][0], checks[0][1], checks[0][2], checks[0][1] == checks[0][2])
    for name, g, w, ok in checks:
        table.add_row(name, f"{float(g):.6g}", f"{float(w):.6g}", "[green]yes[/green]" if ok else "[red]NO[/red]")
    console.print(table)
    sent = ", ".join(f"{p} {c['bytes_sent'] / 1e6:.1f} MB" for p, c in res.comm.items())
    console.print(f"bytes sent: {sent}")
    console.print(escape(f"revealed: {'; '.join(res.revealed)}; PSI: each bank learns which of its own rows are common"))
    console.print(f"wall time: {wall:.2f} s")
    if not all(ok for *_, ok in checks):
        console.print("[red]some results are outside their tolerance[/red]")
        raise typer.Exit(1)
    console.print("[green]the jointly trained model matches the plaintext model[/green]")


def _plain_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Plaintext reference: unpenalised logistic regression with an intercept by Newton's method."""
    z = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-z @ beta))
        step = np.linalg.solve(z.T @ (z * (p * (1 - p))[:, None]), z.T @ (p - y))
        beta -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    return beta
