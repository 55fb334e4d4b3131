"""Drive a node's web dashboard in Debian's headless Chromium (Playwright for Python).

Nothing here starts nodes: the checks take a node's base URL and a token, and read what the page
should show from the same node's API (through the browser context, so TLS is handled the same way
as for the page). ``tests/node/test_dashboard.py`` plugs them into the ``node_cluster`` fixture.

The browser is Debian's ``chromium`` package (``scripts/setup-test.sh`` installs it); Playwright's
own browser download is never used (the machines have no internet).
"""

from __future__ import annotations

import json
import re
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1360, "height": 900}
#: How long the page may take to show what the API says (the jobs list refreshes every 2 s).
UI_TIMEOUT_S = 20.0

FINAL_STATES = ("released", "denied", "failed", "aborted")
PROBLEM_STATES = ("denied", "failed", "aborted")


def missing_browser() -> str | None:
    """Why the dashboard tests cannot run here, or None when Chromium and Playwright are present."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run scripts/setup-test.sh (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install playwright (no `playwright install` needed)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright; closed on exit."""
    why = missing_browser()
    if why is not None:
        import pytest

        pytest.skip(why)
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default; the page polls every 2 s on a shared 2-core machine.
    expect.set_options(timeout=UI_TIMEOUT_S * 1000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def eventually(check: Callable[[], Any], timeout: float = UI_TIMEOUT_S, every: float = 0.25) -> Any:
    """Retry ``check`` (which raises AssertionError while not yet true) until it passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(every)


def normalize_fingerprint(fp: str) -> str:
    """Hex digits only, lower case, without an algorithm prefix ("sha256:ab..", "AB:CD:..")."""
    s = re.sub(r"^sha-?256[:=]", "", fp.strip().lower())
    return re.sub(r"[^0-9a-f]", "", s)


def assert_png(path: Path) -> tuple[int, int]:
    """``path`` is a non-empty PNG; returns its (width, height)."""
    data = path.read_bytes()
    assert len(data) > 1000, f"{path} is only {len(data)} bytes"
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0
    return width, height


def eps_equal(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)), abs(float(b)))


@dataclass
class Dashboard:
    """One browser tab showing one node's dashboard, opened with a token in the URL fragment."""

    page: Any
    base_url: str
    token: str
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Any, base_url: str, token: str) -> Dashboard:
        base = base_url.rstrip("/")
        context = browser.new_context(ignore_https_errors=True, viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_S * 1000)
        dash = cls(page=page, base_url=base, token=token)
        page.on("request", lambda r: dash.requests.append(r.url))
        page.on("pageerror", lambda e: dash.page_errors.append(str(e)))
        page.goto(f"{base}/#token={quote(token, safe='')}")
        return dash

    def close(self) -> None:
        self.page.context.close()

    # -- the API, as the page sees it -----------------------------------------------------------

    def api(self, path: str) -> Any:
        resp = self.page.context.request.get(
            f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token}"}, fail_on_status_code=False
        )
        assert resp.ok, f"GET {path}: {resp.status} {resp.text()[:300]}"
        return json.loads(resp.text())

    # -- parts of the page ----------------------------------------------------------------------

    def locator(self, selector: str) -> Any:
        return self.page.locator(selector)

    def job_row(self, job_id: str) -> Any:
        return self.page.locator(f'#jobs tbody tr[data-job-id="{job_id}"]')

    def wait_for_job(self, job_id: str, state: str) -> Any:
        """The job's row once the table shows it in ``state`` (a badge with class state-<state>)."""
        from playwright.sync_api import expect

        row = self.job_row(job_id)
        expect(row).to_have_count(1)
        badge = row.locator(f".state.state-{state}")
        expect(badge).to_be_visible()
        expect(badge).to_have_text(state.replace("_", " "))
        return row

    def open_job(self, job_id: str) -> Any:
        """Click the job's row; returns the detail panel once it shows that job."""
        from playwright.sync_api import expect

        self.job_row(job_id).click()
        panel = self.page.locator("#job-detail")
        expect(panel).to_be_visible()
        expect(panel).to_have_attribute("data-job-id", job_id)
        return panel

    def budget_rows(self) -> list[dict[str, str]]:
        return self.page.eval_on_selector_all(
            "#budget tbody tr",
            """rows => rows.map(r => ({dataset: r.dataset.dataset, left: r.dataset.epsilonLeft,
                                      shown_left: r.querySelector('.eps-left').textContent,
                                      shown_total: r.querySelector('.eps-total').textContent}))""",
        )

    def screenshot(self, path: Path) -> tuple[int, int]:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return assert_png(path)

    def assert_token_kept_private(self) -> None:
        """The token is neither left in the address bar nor sent in any URL."""
        assert "token" not in self.page.url, self.page.url
        leaked = [u for u in self.requests if self.token in u or quote(self.token, safe="") in u]
        assert not leaked, f"the token appeared in request URLs: {leaked}"
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"


# -- the checks the test runs -------------------------------------------------------------------


def check_admin_dashboard(
    browser: Any,
    base_url: str,
    admin_token: str,
    jobs: Mapping[str, str],
    screenshot: Path,
    fingerprint: str | None = None,
) -> None:
    """Open the node's dashboard with its admin token and check what it shows against the API
    (and, given ``fingerprint``, that the node card shows that identity fingerprint).

    ``jobs`` maps job ids to the final state each has already reached (at least one "released";
    "denied" and "aborted" ones are checked too when given).
    """
    from playwright.sync_api import expect

    assert "released" in jobs.values(), "the check needs a released job"
    dash = Dashboard.open(browser, base_url, admin_token)
    try:
        page = dash.page
        expect(page.locator("#main")).to_be_visible()

        # The node card: who this node is and who is looking.
        node = dash.api("/v1/node")
        node_card = page.locator("#node")
        expect(node_card).to_contain_text(node["name"])
        expect(node_card).to_contain_text(str(node["role"]))
        expect(node_card).to_contain_text("admin")
        if fingerprint is not None:
            shown = page.locator("#node [data-fingerprint]")
            expect(shown).to_have_count(1)
            assert normalize_fingerprint(shown.get_attribute("data-fingerprint")) == normalize_fingerprint(
                fingerprint
            ), "the page shows another fingerprint than the node's in the contract"

        # Every submitted job, with its state badge.
        for job_id, state in jobs.items():
            dash.wait_for_job(job_id, state)

        # Denied / aborted jobs: the detail panel lists exactly the reasons the API gives.
        for job_id, state in jobs.items():
            if state not in PROBLEM_STATES:
                continue
            view = dash.api(f"/v1/jobs/{job_id}")
            panel = dash.open_job(job_id)
            box = panel.locator(f".reasons-box.reasons-{state}")
            expect(box).to_be_visible()
            if state == "denied":
                assert view["reasons"], f"the API gives no reason for denied job {job_id}"
            if view["reasons"]:
                expect(box.locator("li")).to_have_text([str(r) for r in view["reasons"]])
            # the row also carries them as a tooltip
            assert dash.job_row(job_id).locator("td.state-cell").get_attribute("title") == "\n".join(
                map(str, view["reasons"])
            )

        # A released job: its plan and what it revealed.
        released = next(j for j, s in jobs.items() if s == "released")
        view = dash.api(f"/v1/jobs/{released}")
        assert view["plan"], "a released job has a plan"
        assert view["revealed"], "a released job says what it revealed"
        panel = dash.open_job(released)
        expect(panel.locator(".state.state-released").first).to_be_visible()
        assert panel.locator("pre.plan").text_content() == view["plan"]
        expect(panel.locator("ul.revealed li")).to_have_text([str(r) for r in view["revealed"]])
        if view.get("comm"):
            expect(panel).to_contain_text(f"{view['comm']['rounds']} rounds")

        # The privacy budget: every dataset the API lists, with the epsilon it has left.
        def budget_matches() -> list[dict[str, Any]]:
            api = dash.api("/v1/budget")["datasets"]
            shown = {r["dataset"]: r for r in dash.budget_rows()}
            assert api, "the node lists no dataset with a privacy budget"
            for d in api:
                row = shown.get(d["dataset"])
                assert row is not None, f"dataset {d['dataset']} is not in the budget table"
                assert eps_equal(row["left"], d["epsilon_left"]), (row, d)
                assert eps_equal(row["shown_left"], d["epsilon_left"]), (row, d)
                assert eps_equal(row["shown_total"], d["epsilon_total"]), (row, d)
            return api

        eventually(budget_matches)

        # The audit log verifies.
        audit = dash.api("/v1/audit")
        assert audit["verified"] is True, audit
        expect(page.locator("#audit")).to_have_attribute("data-status", "verified")
        expect(page.locator("#audit .audit-badge")).to_have_text("verified")

        expect(page.locator("#error")).to_be_hidden()
        dash.assert_token_kept_private()

        # Leave the released job open: the screenshot shows the list, the details and the side.
        dash.open_job(released)
        dash.screenshot(screenshot)
    finally:
        dash.close()


def check_bad_token(browser: Any, base_url: str, good_token: str | None = None) -> None:
    """A token the node does not accept: a clear error, the sign-in form, nothing kept. With
    ``good_token``, signing in through the form afterwards opens the dashboard."""
    from playwright.sync_api import expect

    bad = "not-a-token-" + "x" * 20
    dash = Dashboard.open(browser, base_url, bad)
    try:
        page = dash.page
        expect(page.locator("#error")).to_be_visible()
        expect(page.locator("#error")).to_contain_text("token not accepted")
        expect(page.locator("#token")).to_be_visible()
        expect(page.locator("#main")).to_be_hidden()
        assert page.evaluate("sessionStorage.length") == 0, "a rejected token was kept"
        dash.assert_token_kept_private()

        if good_token is not None:
            page.locator("#token").fill(good_token)
            page.locator("#login-form button[type=submit]").click()
            expect(page.locator("#main")).to_be_visible()
            expect(page.locator("#node")).to_contain_text("admin")
            expect(page.locator("#error")).to_be_hidden()
            assert "token" not in page.url and good_token not in page.url
    finally:
        dash.close()


# -- the page alone, with the API answered by the test (no node needed) -------------------------

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "tessera" / "node" / "dashboard"
ROUTED_ORIGIN = "https://node.test"
HOSTILE = '<img src=x id="injected" onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def _hostile_job() -> dict[str, Any]:
    """A job view whose every analyst-controlled string is HTML."""
    return {
        "id": "0123456789abcdef0123456789abcdef",
        "state": "denied",
        "analysis": "describe" + HOSTILE,
        "version": "1.0",
        "protocol": "rep3",
        "datasets": ["d" + HOSTILE],
        "columns": ["c" + HOSTILE],
        "params": {"note": HOSTILE},
        "partition": "horizontal",
        "recipients": ["r" + HOSTILE],
        "dp": {"epsilon": 0.5, "delta": 0.0},
        "analyst": "a" + HOSTILE,
        "coordinator": "bank_a",
        "parties": ["bank_a", "bank_b", "bank_c"],
        "created": "2026-11-30T02:30:00+00:00",
        "updated": "2026-11-30T02:30:05+00:00",
        "reasons": ["columns ['" + HOSTILE + "'] are in none of the datasets"],
        "decisions": {"bank_a": {"state": "denied", "reasons": ["reason" + HOSTILE]}},
        "events": [{"ts": "2026-11-30T02:30:00+00:00", "state": "submitted", "detail": "by " + HOSTILE}],
        "progress": {"phase": "denied", "fraction": 1.0, "detail": HOSTILE},
        "plan": "plan" + HOSTILE,
        "revealed": ["nothing" + HOSTILE],
        "comm": None,
        "seconds": None,
    }


def _routed_api(answers: Mapping[str, tuple[int, Any]], seen_auth: list[str | None],
                posts: list[tuple[str, Any]] | None = None) -> Callable[[Any], None]:
    """A Playwright route handler: the dashboard's files from the package, ``/v1/...`` from
    ``answers`` (path -> (status, JSON body)), each request's Authorization header noted (and,
    given ``posts``, each POST's path and JSON body)."""
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}

    def handle(route: Any) -> None:
        path = route.request.url[len(ROUTED_ORIGIN):].split("?")[0].split("#")[0]
        if path.startswith("/v1/"):
            seen_auth.append(route.request.headers.get("authorization"))
            if posts is not None and route.request.method == "POST":
                posts.append((path, json.loads(route.request.post_data or "null")))
            status, body = answers.get(path, (404, {"detail": "not found"}))
            route.fulfill(status=status, content_type="application/json", body=json.dumps(body))
            return
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        file = DASHBOARD_DIR / name
        if "/" in name or not file.is_file():
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, content_type=types.get(file.suffix, "application/octet-stream"), body=file.read_bytes())

    return handle


def check_routed_page(browser: Any) -> None:
    """Serve the dashboard files and a made-up API through Playwright routing and check that
    analyst-controlled text stays text (no element, no script from it), that an API error is shown
    with its detail, and that a 403 on the audit log reads "admin only"."""
    from playwright.sync_api import expect

    job = _hostile_job()
    answers: dict[str, tuple[int, Any]] = {
        "/v1/node": (200, {"name": "bank_a", "role": "data_owner", "contract_id": "c-1", "contract_hash": "ab" * 32,
                           "fingerprint": "cd" * 32, "parties": [{"name": "bank_a", "role": "data_owner", "api": "x"}],
                           "viewer": {"kind": "analyst", "id": "a" + HOSTILE}}),
        "/v1/jobs": (200, {"jobs": [job]}),
        f"/v1/jobs/{job['id']}": (200, job),
        "/v1/budget": (500, {"detail": "the budget ledger is unavailable"}),
        "/v1/audit": (403, {"detail": "admin only"}),
    }
    seen_auth: list[str | None] = []
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.route(f"{ROUTED_ORIGIN}/**", _routed_api(answers, seen_auth))
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_S * 1000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{ROUTED_ORIGIN}/#token=analyst%20token")

        row = page.locator(f'#jobs tbody tr[data-job-id="{job["id"]}"]')
        expect(row.locator(".state.state-denied")).to_be_visible()
        expect(row).to_contain_text(job["analysis"])  # the markup shows as its own text
        row.click()
        panel = page.locator("#job-detail")
        expect(panel).to_have_attribute("data-job-id", job["id"])
        expect(panel.locator("pre.plan")).to_have_text(job["plan"])
        expect(panel.locator("ul.revealed li")).to_have_text(job["revealed"])
        expect(panel.locator(".reasons-box li")).to_have_text(job["reasons"])
        expect(panel).to_contain_text(job["events"][0]["detail"])

        expect(page.locator("#error")).to_contain_text("error 500: the budget ledger is unavailable")
        expect(page.locator("#audit")).to_have_attribute("data-status", "forbidden")
        expect(page.locator("#audit")).to_contain_text("admin only")
        expect(page.locator("#node")).to_contain_text("analyst")

        assert page.locator("#injected, script:not([src])").count() == 0, "API text became markup"
        assert page.evaluate("window.__pwned") is None, "API text ran as script"
        assert not errors, errors
        assert seen_auth and set(seen_auth) == {"Bearer analyst token"}, seen_auth
        assert "token" not in page.url
    finally:
        context.close()


# -- #16.7: a recipient's result, times with their zone, jobs that ended without a release ------


def _job(job_id: str, state: str, fraction: float, **kw: Any) -> dict[str, Any]:
    base = {k: v for k, v in _hostile_job().items()}
    base.update({"id": job_id, "state": state, "analysis": "describe", "datasets": ["tx_alpha"], "columns": ["amount"],
                 "params": {"columns": ["amount"]}, "recipients": ["analyst-1"], "analyst": "analyst-1",
                 "reasons": [], "decisions": {}, "events": [], "plan": "plan", "revealed": ["mean[amount] -> analyst-1"],
                 "progress": {"phase": state, "fraction": fraction, "detail": state}, "has_result": False,
                 "created": "2026-11-30T02:30:00+00:00", "updated": "2026-11-30T02:31:05+00:00"})
    base.update(kw)
    return base


def check_routed_recipient_page(browser: Any) -> None:
    """A recipient analyst opens its released job and sees the outputs, named, with the values
    the result API gave; times read as date, time and zone (in the browser's zone, here
    Europe/Berlin, UTC+01:00 in November); a denied and a cancelled job say "not run" with an
    empty bar, a failed one "stopped at 50%" (no "100%" anywhere)."""
    from playwright.sync_api import expect

    released = _job("00000000000000b1", "released", 1.0, has_result=True)
    denied = _job("00000000000000b2", "denied", 0.1, reasons=["alpha: iterations=40 exceeds the contract's 25"])
    rejected = _job("00000000000000b3", "denied", 0.2, reasons=["beta: rejected by the owner of beta: not now"])
    failed = _job("00000000000000b4", "failed", 0.5, reasons=["alpha: DataError: column 'amount' has NULLs"])
    cancelled = _job("00000000000000b5", "cancelled", 0.1, reasons=["alpha: cancelled by analyst analyst-1"])
    other = _job("00000000000000b6", "released", 1.0, recipients=["beta"], has_result=False)
    pending = _job("00000000000000b7", "pending", 0.1, coordinator="alpha")
    elsewhere = _job("00000000000000b8", "pending", 0.1, coordinator="beta")
    jobs = [released, denied, rejected, failed, cancelled, other, pending, elsewhere]
    result = {"job_id": released["id"], "revealed": released["revealed"],
              "outputs": {"n": 1834, "mean": {"__ndarray__": [41.523456789], "dtype": "<f8", "shape": [1]},
                          "cov": {"__ndarray__": [[1.5, 0.25], [0.25, 2.0]], "dtype": "<f8", "shape": [2, 2]}}}
    answers: dict[str, tuple[int, Any]] = {
        "/v1/node": (200, {"name": "alpha", "role": "data_owner", "contract_id": "c-1", "contract_hash": "ab" * 32,
                           "fingerprint": "cd" * 32, "parties": [], "viewer": {"kind": "analyst", "id": "analyst-1"}}),
        "/v1/jobs": (200, {"jobs": jobs}),
        "/v1/budget": (200, {"datasets": []}),
        "/v1/audit": (403, {"detail": "only this node's owner (admin token) may do this"}),
        f"/v1/jobs/{released['id']}/result": (200, result),
        f"/v1/jobs/{other['id']}/result": (403, {"detail": "'analyst-1' is not a recipient"}),
        f"/v1/jobs/{pending['id']}/cancel": (200, {**pending, "state": "cancelled",
                                                   "reasons": ["alpha: cancelled by analyst analyst-1: typo"]}),
        **{f"/v1/jobs/{j['id']}": (200, j) for j in jobs},
    }
    seen: list[str | None] = []
    posts: list[tuple[str, Any]] = []
    context = browser.new_context(viewport=VIEWPORT, timezone_id="Europe/Berlin", locale="en-US")
    try:
        context.route(f"{ROUTED_ORIGIN}/**", _routed_api(answers, seen, posts))
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_S * 1000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{ROUTED_ORIGIN}/#token=analyst-token")

        row = page.locator(f'#jobs tbody tr[data-job-id="{released["id"]}"]')
        expect(row.locator(".state.state-released")).to_be_visible()
        # created 02:30 UTC is 03:30 in Berlin in November: date, time and zone
        expect(row.locator("td.time").first).to_have_text("2026-11-30 03:30:00 UTC+01:00")
        expect(row.locator(".progress-label")).to_have_text("done")
        row.click()
        panel = page.locator("#job-detail")
        expect(panel).to_have_attribute("data-job-id", released["id"])
        box = panel.locator(f'.result[data-result-for="{released["id"]}"]')
        expect(box.locator("h3")).to_have_text("Your result")
        expect(box.locator('tr[data-output="n"] td.value')).to_have_text("1834")
        expect(box.locator('tr[data-output="mean"] td.value')).to_have_text("41.5235")
        expect(box.locator('tr[data-output="cov"] pre.value-matrix')).to_have_text("1.5\t0.25\n0.25\t2")
        expect(box.locator("tr[data-output]")).to_have_count(3)

        # a job whose result is someone else's: no result section, no request for it
        page.locator(f'#jobs tbody tr[data-job-id="{other["id"]}"]').click()
        expect(panel).to_have_attribute("data-job-id", other["id"])
        expect(panel.locator(".result")).to_have_count(0)

        for job, label in ((denied, "not run"), (rejected, "not run"), (cancelled, "not run"),
                           (failed, "stopped at 50%")):
            r = page.locator(f'#jobs tbody tr[data-job-id="{job["id"]}"]')
            expect(r.locator(".progress-label")).to_have_text(label)
            width = r.locator(".bar-fill").evaluate("e => parseFloat(e.style.width)")
            assert width == (50.0 if job is failed else 0.0), (job["state"], width)
        expect(page.locator("#jobs")).not_to_contain_text("100%")
        page.locator(f'#jobs tbody tr[data-job-id="{rejected["id"]}"]').click()
        expect(panel.locator(".reasons-box.reasons-denied h3")).to_have_text("Rejected by a data owner")
        page.locator(f'#jobs tbody tr[data-job-id="{cancelled["id"]}"]').click()
        expect(panel.locator(".reasons-box.reasons-cancelled h3")).to_have_text("Why it was cancelled")
        # the analyst may cancel its own job at the coordinator (here): not an ended one, nor one coordinated elsewhere
        expect(panel.locator(".cancel")).to_have_count(0)
        page.locator(f'#jobs tbody tr[data-job-id="{elsewhere["id"]}"]').click()
        expect(panel).to_have_attribute("data-job-id", elsewhere["id"])
        expect(panel.locator(".cancel")).to_have_count(0)
        page.locator(f'#jobs tbody tr[data-job-id="{pending["id"]}"]').click()
        expect(panel).to_have_attribute("data-job-id", pending["id"])
        panel.locator(".cancel input").fill("typo")
        panel.locator(".cancel button").click()
        expect(panel.locator(".cancel-status")).to_have_text("job cancelled")
        assert posts == [(f"/v1/jobs/{pending['id']}/cancel", {"reason": "typo"})], posts
        # denied is a decision, not an error: not the red of a failure
        colours = page.evaluate("""() => Object.fromEntries(["denied", "failed"].map(s => [s,
            getComputedStyle(document.querySelector(`#jobs .state.state-${s}`)).color]))""")
        assert colours["denied"] != colours["failed"], colours
        assert not errors, errors
        assert f"/v1/jobs/{other['id']}/result" not in " ".join(str(x) for x in seen)
    finally:
        context.close()


def check_recipient_dashboard(browser: Any, base_url: str, analyst_token: str, job_id: str) -> None:
    """The analyst (a recipient) opens its released job on a real node and sees each output the
    node's result API gives it, by name, with its value."""
    from playwright.sync_api import expect

    dash = Dashboard.open(browser, base_url, analyst_token)
    try:
        result = dash.api(f"/v1/jobs/{job_id}/result")
        outputs = result["outputs"]
        assert outputs, result
        dash.wait_for_job(job_id, "released")
        panel = dash.open_job(job_id)
        box = panel.locator(f'.result[data-result-for="{job_id}"]')
        expect(box.locator("h3")).to_have_text("Your result")
        expect(box.locator("tr[data-output]")).to_have_count(len(outputs))
        for name, value in outputs.items():
            cell = box.locator(f'tr[data-output="{name}"] td.value')
            expect(cell).to_be_visible()
            flat = value["__ndarray__"] if isinstance(value, dict) and "__ndarray__" in value else value
            if isinstance(flat, list) and flat and all(isinstance(x, (int, float)) for x in flat):
                shown = [float(x) for x in cell.text_content().split(", ")]
                assert len(shown) == len(flat) and all(abs(a - b) <= 1e-5 * max(1.0, abs(b))
                                                       for a, b in zip(shown, flat)), (name, shown, flat)
            elif isinstance(flat, (int, float)):
                assert abs(float(cell.text_content()) - flat) <= 1e-5 * max(1.0, abs(flat)), (name, flat)
        dash.assert_token_kept_private()
    finally:
        dash.close()
