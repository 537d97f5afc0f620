"""Every door of the auditor's workbench is the same door (issue 27): the REST routes
(`/api/v1/audit/...`, real uvicorn on loopback, httpx), the CLI (`kura audit who-saw|alerts|
report|overview|entry`, a real subprocess, through the running server and in-process) and the
UI page (Streamlit AppTest against the same service). Employees' and admins' keys and sessions
are refused on each, and each refusal is an audit entry; an auditor gets figures that equal a
count made directly from the log. Real accounts, keys, store, embedder and log; no LLM.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from app.doors.http import runtime
from app.doors.http.api import standalone_app
from app.identity import operator_token as server_token
from app.identity.users import local_operator
from app.platform.settings import KuraSettings
from app.service import KuraService
from tests.api_server import LoopbackServer
from tests.conftest import REPO
from tests.test_audit_workbench import call_api, direct_counts, populate
from tests.test_ui_audited_pages import downloads  # noqa: F401  (a fixture: what a page offers to download)

PASSWORD = "Copper-meadow-48"
WORKBENCH = str(REPO / "app" / "doors" / "ui" / "views" / "workbench.py")
AUDIT_LOG = str(REPO / "app" / "doors" / "ui" / "views" / "audit.py")
ROUTES = (
    ("GET", "/api/v1/audit/overview", None),
    ("GET", "/api/v1/audit/who-saw?group=hr", None),
    ("GET", "/api/v1/audit/alerts", None),
    ("PUT", "/api/v1/audit/alerts/rules/refusals", {"threshold": 2, "window_s": 60}),
    ("GET", "/api/v1/audit/report?group=hr&month=2026-01", None),
    ("GET", "/api/v1/audit/entries/1", None),
)


@dataclass
class Desk:
    data: Path
    settings: KuraSettings
    service: KuraService
    url: str
    keys: dict[str, str]  # who -> key: hana (employee, read), boss (admin), checker (audit)

    def entries(self) -> list[dict]:
        return list(self.service.audit.entries())

    def call(self, who: str, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return call_api(self.url, self.keys[who], method, path, body)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Desk]:
    root = tmp_path_factory.mktemp("audit-doors")
    settings = KuraSettings(data_dir=root / "data", audit_alert_interval_s=0)
    service = KuraService(settings, embedder=embedder)
    populate(service, root, PASSWORD)
    keys = {
        who: service.create_api_key(local_operator(), scope, "doors", None, owner=who)[1]
        for who, scope in (("hana", "read"), ("sam", "read"), ("boss", "admin"), ("checker", "audit"))
    }
    with LoopbackServer(standalone_app(settings, lambda: service)) as server:
        server_token.write(settings, server.url)  # what `kura serve` does once it listens
        desk = Desk(root / "data", settings, service, server.url, keys)
        for who in ("hana", "sam"):  # reads through the API: real searches, real ACL filter
            assert desk.call(who, "POST", "/api/v1/search", {"query": "parental leave weeks"}).status_code == 200
        try:
            yield desk
        finally:
            server_token.remove(settings)
            service.close()


def _kura(desk: Desk, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(KURA_DATA_DIR=str(desk.data), COLUMNS="200", PYTHONPATH=str(REPO))
    if key:
        env["KURA_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=180)


def test_rest_refuses_employee_and_admin_keys_on_every_analytics_route_and_audits_each(desk: Desk) -> None:
    for who in ("hana", "boss"):
        for method, path, body in ROUTES:
            before = len(desk.entries())
            answered = desk.call(who, method, path, body)
            assert answered.status_code == 403, (who, path, answered.text)
            assert answered.json()["error"]["code"] == "forbidden"
            added = desk.entries()[before:]
            assert [(e["action"], e["user"]) for e in added] == [("denied", who)], (who, path)
    # An audit key whose owner is no longer an auditor: the service itself refuses (audited).
    desk.service.accounts.add("former", PASSWORD, ["auditor"])
    _, key = desk.service.create_api_key(local_operator(), "audit", "old", None, owner="former")
    desk.service.accounts.set_roles("former", ["employee"])
    before = len(desk.entries())
    refused = httpx.get(f"{desk.url}/api/v1/audit/overview", headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert refused.status_code == 403
    [denied] = [e for e in desk.entries()[before:] if e["action"] == "denied"]
    assert denied["user"] == "former" and denied["attempted"] == "open the auditor's overview"
    assert not any(e["action"] in ("audit_view", "audit_report", "alert_rule") and e["user"] != "checker"
                   for e in desk.entries())


def test_rest_gives_an_auditor_the_figures_and_a_report_equal_to_a_direct_count(desk: Desk) -> None:
    seen = desk.call("checker", "GET", "/api/v1/audit/who-saw?document=parental-leave").json()
    assert [p for p, _ in seen["people"]] == ["hana"]  # sam searched the same words, and was not shown it
    [row] = seen["rows"]
    proof = desk.call("checker", "GET", f"/api/v1/audit/entries/{row['seq']}").json()
    assert proof["entry"]["user"] == "hana" and proof["authentic"] and proof["linked"]

    overview = desk.call("checker", "GET", "/api/v1/audit/overview").json()
    entries = desk.entries()
    assert overview["totals"]["searches"] == sum(e["action"] == "search" for e in entries)
    assert dict(overview["users"]) == {"hana": 1, "sam": 1}

    month = entries[-1]["time"][:7]
    report = desk.call("checker", "GET", f"/api/v1/audit/report?group=hr&month={month}&format=csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    figures = {r["name"]: int(r["value"]) for r in rows if r["section"] == "figure"}
    assert figures == direct_counts(desk.entries(), "hr", month)
    assert int(report.headers["X-Kura-People"]) == figures["people"] == 1
    [made] = [e for e in desk.entries() if e["action"] == "audit_report"][-1:]
    assert made["user"] == "checker" and made["figures"] == figures and made["api_key"]


def test_cli_refuses_employee_and_admin_keys_through_the_server_and_in_process(desk: Desk) -> None:
    for mode in ("server", "in-process"):
        if mode == "in-process":
            server_token.remove(desk.settings)  # no running server: the command opens the service itself
        try:
            for who in ("hana", "boss"):
                for args in (("who-saw", "--group", "hr"), ("alerts",), ("report", "--group", "hr", "--month",
                                                                         "2026-01", "--out", "/dev/null")):
                    before = len(desk.entries())
                    done = _kura(desk, "audit", *args, key=desk.keys[who])
                    assert done.returncode == 2, (mode, who, args, done.stdout, done.stderr)
                    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
                    added = [e for e in desk.entries()[before:] if e["action"] == "denied"]
                    assert [e["user"] for e in added] == [who], (mode, who, args)
            shown = _kura(desk, "audit", "who-saw", "--document", "parental-leave", "--json", key=desk.keys["checker"])
            assert shown.returncode == 0, shown.stderr
            assert [p for p, _ in json.loads(shown.stdout)["people"]] == ["hana"]
        finally:
            if mode == "in-process":
                server_token.write(desk.settings, desk.url)
    operator = _kura(desk, "audit", "alerts", "--json")  # the shell's own operator is an auditor
    assert operator.returncode == 0 and "rules" in json.loads(operator.stdout)


def _page(desk: Desk, who: str, page: str = WORKBENCH) -> AppTest:
    token = desk.service.accounts.open_session(desk.service.accounts.get(who))
    at = AppTest.from_file(page, default_timeout=120)
    at.session_state["kura_session_token"] = token
    return at.run()


def test_the_auditor_pages_refuse_employees_and_admins_and_serve_an_auditor(desk: Desk, downloads) -> None:  # noqa: F811
    runtime.install(desk.service)
    try:
        for who in ("hana", "boss"):
            for page in (WORKBENCH, AUDIT_LOG):
                before = len(desk.entries())
                at = _page(desk, who, page)
                assert not at.exception and not at.title and not at.dataframe
                assert any("may not open this page" in e.value for e in at.error)
                assert [(e["action"], e["user"]) for e in desk.entries()[before:]] == [("denied", who)], page

        at = _page(desk, "checker")
        assert not at.exception, at.exception
        assert [t.value for t in at.title] == ["Audit workbench"]
        assert {m.label: m.value for m in at.metric}["Searches"] == str(
            sum(e["action"] == "search" for e in desk.entries()))
        before = len(desk.entries())
        at.run()  # a rerun neither asks the service again nor adds an audit entry
        assert len(desk.entries()) == before

        at.segmented_control(key="wb_view").set_value("who_saw").run()
        at.selectbox(key="wb_kind").set_value("document").run()
        at.text_input(key="wb_target").input("parental-leave").run()
        table = at.dataframe[0].value
        assert table["Person"].tolist() == ["hana"] and table["Entry"].str.startswith("workbench?seq=").all()
        linked = AppTest.from_file(WORKBENCH, default_timeout=120)  # the row's link, opened
        linked.session_state["kura_session_token"] = at.session_state["kura_session_token"]
        linked.query_params["seq"] = table["Entry"][0].split("=")[1]
        linked.run()
        assert any(f"Entry #{linked.query_params['seq']}: hash made with the audit key: yes" in s.value
                   for s in linked.success)
        assert '"user": "hana"' in linked.code[0].value

        at.segmented_control(key="wb_view").set_value("alerts").run()
        at.selectbox(key="wb_rule").set_value("after_hours").run()
        at.number_input(key="wb_threshold_after_hours").set_value(5).run()
        at.button(key="wb_rule_save").click().run()
        assert not at.exception and any("recorded in the audit log" in m.value for m in at.success)
        [changed] = [e for e in desk.entries() if e["action"] == "alert_rule"]
        assert (changed["user"], changed["rule"], changed["threshold"]) == ("checker", "after_hours", 5)

        at.segmented_control(key="wb_view").set_value("reports").run()
        at.text_input(key="wb_report_group").input("hr").run()
        month = desk.entries()[-1]["time"][:7]
        at.selectbox(key="wb_report_month").set_value(month).run()
        at.button(key="wb_report_prepare").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        body = downloads[f"kura-audit-hr-{month}.csv"].decode("utf-8-sig")
        figures = {r["name"]: int(r["value"]) for r in csv.DictReader(io.StringIO(body)) if r["section"] == "figure"}
        assert figures == direct_counts(desk.entries(), "hr", month)
    finally:
        runtime.uninstall()
