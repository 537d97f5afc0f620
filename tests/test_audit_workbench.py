"""The auditor's workbench over a real log (issue 27): real accounts, real ingestion of small
Markdown folders into the real store with the real embedder, real searches, the real
hash-chained log and its analytics index (audit-index.sqlite3). Every figure the workbench
gives is checked against a count made directly from the log's lines.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.audit.index import INDEX_FILE
from app.audit.log import AuditLog
from app.identity.users import AccessDenied, User
from app.service import KuraService
from tests.test_audit_siem import pki, receiver  # noqa: F401  (fixtures: a CA and a real rsyslogd over TLS)

PASSWORD = "Lantern-orchard-73"
HR_POLICY = (
    "# Parental leave policy\n\nEmployees may take up to twenty six weeks of parental leave after a birth or an "
    "adoption. Parental leave is paid for the first twelve weeks.\n"
)
CANTEEN = "# Canteen\n\nThe canteen opens at eight and serves a warm lunch until two every weekday.\n"
SHOWN = {"query", "search", "passage_view", "passage_context", "document_view", "export"}


@dataclass
class Office:
    service: KuraService
    boss: User
    checker: User
    hana: User  # hr
    sam: User  # sales
    hr_doc: str
    canteen_doc: str

    def entries(self) -> list[dict[str, Any]]:
        return list(self.service.audit.entries())


def call_api(url: str, key: str, method: str, path: str, body: dict | None = None) -> Any:
    """One REST call with a personal key, as any client makes it (httpx, a real socket)."""
    import httpx

    return httpx.request(method, url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=300)


def populate(service: KuraService, root: Path, password: str = PASSWORD) -> dict[str, str]:
    """The office every workbench test starts from: an admin, an auditor, hana in hr and sam in
    sales; an HR folder (group hr) and a public one (everyone), really ingested. Returns the
    document ids by file name."""
    accounts = service.accounts
    accounts.add("boss", password, ["admin", "employee"])
    accounts.add("checker", password, ["auditor"])
    accounts.add("hana", password, ["employee"], groups=["hr"])
    accounts.add("sam", password, ["employee"], groups=["sales"])
    for folder, name, text, groups in (("hr", "parental-leave.md", HR_POLICY, ["hr"]),
                                       ("public", "canteen.md", CANTEEN, ["everyone"])):
        (root / folder).mkdir()
        (root / folder / name).write_text(text, encoding="utf-8")
        service.ingest(accounts.get("boss"), root / folder, groups)
    return {Path(f.path).name: f.doc_id for f in service.manifest.all_files()}


@pytest.fixture
def office(service: KuraService, tmp_path: Path) -> Office:
    by_path = populate(service, tmp_path)
    get = service.accounts.get
    return Office(service, get("boss"), get("checker"), get("hana"), get("sam"),
                  by_path["parental-leave.md"], by_path["canteen.md"])


def groups_then(entries: list[dict[str, Any]]) -> dict[int, set[str]]:
    """seq -> the groups the log last recorded for the entry's person: the entry's own
    `reader_groups`, else the latest of their earlier ones or of an account change naming them."""
    held: dict[str, set[str]] = {}
    then: dict[int, set[str]] = {}
    for e in entries:
        if "reader_groups" in e:
            held[e["user"]] = set(e["reader_groups"])
        then[e["seq"]] = held.get(e["user"], set())
        if e["action"] == "user_change" and isinstance(e.get("groups"), list):
            held[e["target"]] = {"everyone", *e["groups"]}
    return then


def direct_counts(entries: list[dict[str, Any]], group: str, month: str) -> dict[str, int]:
    """A group's month counted straight from the log's lines, the report's definitions spelled out."""
    held = groups_then(entries)
    in_month = [e for e in entries if e["time"][:7] == month]
    shows = [
        (e, doc) for e in in_month if e["action"] in SHOWN and e.get("outcome") not in ("refused", "not_found")
        for doc, groups in zip(e.get("documents") or [], e.get("doc_groups") or [], strict=True)
        if group in groups.split(",")
    ]
    refusals = [e for e in in_month if (e.get("outcome") == "refused" or e["action"] in ("denied", "api_key_refused"))
                and group in held[e["seq"]]]
    alerts = [e for e in in_month if e["action"] == "alert" and group in e.get("groups", [])]
    return {
        "questions": len({e["seq"] for e, _ in shows if e["action"] in ("query", "search")}),
        "people": len({e["user"] for e, _ in shows}),
        "documents": len({doc for _, doc in shows}),
        "shows": len(shows),
        "refusals": len(refusals),
        "alerts": len(alerts),
    }


def direct_totals(entries: list[dict[str, Any]]) -> dict[str, int]:
    count: Counter[str] = Counter()
    for e in entries:
        action, outcome = e["action"], e.get("outcome")
        count["questions"] += action == "query"
        count["searches"] += action == "search"
        count["denied"] += action == "denied"
        count["refused"] += outcome == "refused" or action == "api_key_refused"
        count["alerts"] += action == "alert"
        if action in SHOWN and outcome not in ("refused", "not_found"):
            count["shows"] += len(e.get("documents") or [])
    return dict(count)


def test_who_saw_an_hr_document_names_only_the_people_really_shown_it(office: Office) -> None:
    service = office.service
    hana_found = service.search(office.hana, "How many weeks of parental leave?")
    sam_found = service.search(office.sam, "How many weeks of parental leave?")
    assert office.hr_doc in {p.doc_id for p in hana_found}
    assert office.hr_doc not in {p.doc_id for p in sam_found}  # the ACL filter inside the query

    seen = service.who_saw(office.checker, document="parental-leave")
    assert [p for p, _ in seen.people] == ["hana"] and {r.user for r in seen.rows} == {"hana"}
    [row] = seen.rows
    assert row.groups == "hr" and row.query == "How many weeks of parental leave?" and row.action == "search"
    assert seen.names[office.hr_doc].endswith("hr/parental-leave.md")
    # The row leads to its entry, and the entry's chain position holds.
    proof = service.audit_entry(office.checker, row.seq)
    assert proof.entry["user"] == "hana" and office.hr_doc in proof.entry["documents"]
    assert proof.authentic and proof.linked and proof.next_linked is True

    by_group = service.who_saw(office.checker, group="hr")
    assert {r.user for r in by_group.rows} == {"hana"}
    folder = str(Path(service.manifest.files_of(office.hr_doc)[0].root))
    assert {r.doc_id for r in service.who_saw(office.checker, folder=folder).rows} == {office.hr_doc}
    person = service.who_saw(office.checker, person="sam")
    assert office.hr_doc not in {d for d, *_ in person.documents} and "hr" not in dict(person.groups)

    views = [e for e in office.entries() if e["action"] == "audit_view" and e.get("view") in ("who_saw", "entry")]
    assert [v.get("document") or v.get("group") or v.get("folder") or v.get("person") or v.get("entry_seq")
            for v in views] == ["parental-leave", row.seq, "hr", folder, "sam"]  # each view is audited


def test_employees_and_admins_are_refused_every_workbench_view_and_each_refusal_is_audited(office: Office) -> None:
    service = office.service
    calls = {
        "overview": lambda u: service.audit_overview(u),
        "who saw": lambda u: service.who_saw(u, group="hr"),
        "alerts": lambda u: service.audit_alerts(u),
        "alert rule": lambda u: service.set_alert_rule(u, "refusals", 2, 60),
        "report": lambda u: service.audit_report(u, "hr", "2026-12"),
        "entry": lambda u: service.audit_entry(u, 1),
        "log page": lambda u: service.browse_audit(u),
    }
    for user in (office.hana, office.boss):
        for name, call in calls.items():
            before = len(office.entries())
            with pytest.raises(AccessDenied):
                call(user)
            added = office.entries()[before:]
            assert [e["action"] for e in added] == ["denied"], (user.name, name)
            assert added[0]["user"] == user.name and added[0]["reader_groups"] == list(user.read_groups)
    assert not any(e["action"] in ("audit_view", "audit_report", "alert_rule") for e in office.entries())


def test_overview_and_report_figures_equal_a_direct_count_over_the_log(office: Office) -> None:
    service = office.service
    service.search(office.hana, "parental leave weeks")
    service.search(office.hana, "canteen lunch")
    service.search(office.sam, "canteen lunch hours")
    service.search(office.sam, "quantum chromodynamics lattice")  # finds nothing readable, or little
    answer = service.ask(office.hana, "How many weeks of parental leave may employees take?")
    "".join(answer.tokens())
    with pytest.raises(AccessDenied):
        service.documents(office.sam)  # a denial, with sam's groups recorded

    found = service.audit_overview(office.checker)
    entries = office.entries()
    direct = direct_totals(entries)
    for measure in ("questions", "searches", "denied", "refused", "shows"):
        assert found.totals[measure] == direct.get(measure, 0), measure
    assert found.totals["answers"] == sum(e["action"] == "answer" for e in entries) == 1
    assert dict(found.users) == {"hana": 3, "sam": 2}
    assert dict(found.departments) == {"hr": 3, "sales": 2}
    assert dict(found.groups)["hr"] == sum(
        g == "hr" for e in entries if e["action"] in SHOWN for g in e.get("doc_groups") or [])

    month = entries[-1]["time"][:7]
    report = service.audit_report(office.checker, "hr", month, "csv")
    rows = list(csv.DictReader(io.StringIO(report.body.decode("utf-8-sig"))))
    figures = {r["name"]: int(r["value"]) for r in rows if r["section"] == "figure"}
    assert figures == direct_counts(office.entries(), "hr", month) == report.figures
    assert figures["people"] == 1 and figures["questions"] >= 1  # only hana was ever shown hr's documents
    html = service.audit_report(office.checker, "hr", month, "html", "ja").body.decode("utf-8")
    assert f'data-figure=questions>{figures["questions"]}<' in html and "<svg" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch: it opens offline
    made = [e for e in office.entries() if e["action"] == "audit_report"]
    assert [(e["group"], e["format"], e["figures"]) for e in made] == [("hr", "csv", figures), ("hr", "html", figures)]


def test_the_index_is_rebuilt_after_deletion_and_after_appends_while_the_server_was_down(
    office: Office, settings
) -> None:
    service = office.service
    service.search(office.hana, "parental leave weeks")
    service.search(office.sam, "canteen lunch")
    first = service.audit_overview(office.checker)
    index_path = settings.data_dir / INDEX_FILE
    assert index_path.exists() and first.totals["searches"] == 2
    service.close()

    # Deleted: the next service rebuilds it from the log, with the same figures.
    index_path.unlink()
    again = KuraService(settings, embedder=service.parts.embedder.peek())
    assert again.audit_overview(office.checker).totals == first.totals
    assert again.audit_index.meta("format")  # built anew
    again.close()

    # Written while no server ran (another process, straight to the log): indexed, not rebuilt.
    log = AuditLog(settings.audit_path)
    for _ in range(3):
        log.append(user="sam", role="employee", action="search", query="offline search",
                   documents=[office.canteen_doc], chunks=["x"])
    log.append(user="hana", role="employee", action="search", query="offline hr", documents=[office.hr_doc],
               chunks=["y"])
    resumed = KuraService(settings, embedder=service.parts.embedder.peek())
    report = resumed.audit_index.refresh()  # what the first view does: only the new lines
    assert report.rebuilt == "" and report.indexed == 4
    totals = resumed.audit_overview(office.checker).totals
    direct = direct_totals(list(log.entries()))
    assert totals["searches"] == direct["searches"] == 6 and totals["shows"] == direct["shows"]
    # The entries written without doc_groups get the groups the log's ingest entries gave them.
    assert {r.user for r in resumed.who_saw(office.checker, group="hr").rows} == {"hana"}
    assert len(resumed.who_saw(office.checker, group="hr").rows) == 2
    resumed.close()


def test_a_scripted_burst_of_refusals_raises_one_alert_kept_in_the_chained_log(office: Office, settings) -> None:
    service = office.service
    for _ in range(10):
        with pytest.raises(AccessDenied):
            service.documents(office.sam)
    written = service.check_alerts()
    burst = [a for a in written if a["rule"] == "refusals"]
    assert len(burst) == 1 and burst[0]["subject"] == "sam" and burst[0]["count"] == 10
    denied = [e["seq"] for e in office.entries() if e["action"] == "denied" and e["user"] == "sam"]
    assert burst[0]["seqs"] == denied and burst[0]["groups"] == ["sales"]
    assert service.check_alerts() == []  # evaluated again: nothing twice
    rules, listed = service.audit_alerts(office.checker)
    assert [a["seq"] for a in listed if a["rule"] == "refusals"] == [burst[0]["seq"]]

    # An index rebuilt from the log finds the alert there and does not raise it again.
    service.close()
    (settings.data_dir / INDEX_FILE).unlink()
    again = KuraService(settings)
    assert [a for a in again.check_alerts() if a["rule"] == "refusals"] == []
    assert again.audit.verify() == []  # alerts are chained entries like any other
    again.close()


def test_a_rule_change_is_audited_and_survives_an_index_rebuild(office: Office, settings) -> None:
    service = office.service
    rule = service.set_alert_rule(office.checker, "refusals", 3, 600)
    assert (rule.threshold, rule.window_s) == (3, 600)
    [changed] = [e for e in office.entries() if e["action"] == "alert_rule"]
    assert changed["user"] == "checker" and changed["threshold"] == 3
    for _ in range(3):
        with pytest.raises(AccessDenied):
            service.documents(office.hana)
    assert [a["subject"] for a in service.check_alerts() if a["rule"] == "refusals"] == ["hana"]
    with pytest.raises(ValueError, match="threshold"):
        service.set_alert_rule(office.checker, "refusals", 0, 600)
    service.close()
    (settings.data_dir / INDEX_FILE).unlink()
    again = KuraService(settings)
    rules, _ = again.audit_alerts(office.checker)
    assert {r.name: r.threshold for r in rules}["refusals"] == 3
    again.close()


def test_a_stale_session_shown_a_group_no_longer_held_raises_an_alert(office: Office) -> None:
    service = office.service
    stale = office.hana  # signed in while still in hr
    service.remove_user_from_group(office.boss, "hana", "hr")
    found = service.search(stale, "How many weeks of parental leave?")  # the stale groups filtered it
    assert office.hr_doc in {p.doc_id for p in found}
    [entry] = [e for e in office.entries() if e["action"] == "search" and e["user"] == "hana"]
    assert entry["reader_groups"] == ["everyone"] and entry["session_groups"] == ["everyone", "hr"]
    stale_alerts = [a for a in service.check_alerts() if a["rule"] == "stale_group"]
    assert len(stale_alerts) == 1 and stale_alerts[0]["subject"] == "hana" and stale_alerts[0]["groups"] == ["hr"]
    assert stale_alerts[0]["seqs"] == [entry["seq"]]


def test_a_cut_log_rebuilds_the_index_and_tells_without_hiding_the_cut(office: Office, settings) -> None:
    service = office.service
    service.search(office.hana, "parental leave weeks")
    service.audit_overview(office.checker)
    lines = settings.audit_path.read_text(encoding="utf-8").splitlines(keepends=True)
    settings.audit_path.write_text("".join(lines[:-2]), encoding="utf-8")  # its head still says more
    service.check_alerts()
    cut = [a for a in service.unrecorded_alerts if a["rule"] == "chain"]
    assert cut and "no longer holds" in cut[0]["message"]
    assert not any(e["action"] == "alert" and e["rule"] == "chain" for e in office.entries())
    assert any("entries deleted from the end" in str(p) for p in service.audit.verify())  # still seen


def test_an_api_key_used_from_a_new_address_raises_an_alert(office: Office, settings) -> None:
    import httpx

    from app.doors.http.api import standalone_app
    from tests.api_server import LoopbackServer

    service = office.service
    _, key = service.create_api_key(office.sam, "read", "bot", None)
    with LoopbackServer(standalone_app(settings, lambda: service)) as server:
        for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport, timeout=60) as client:
                answered = client.post(f"{server.url}/api/v1/search", json={"query": "canteen lunch"},
                                       headers={"Authorization": f"Bearer {key}"})
                assert answered.status_code == 200, answered.text
    calls = [e for e in office.entries() if e["action"] == "search" and e["user"] == "sam"]
    assert [e["client"] for e in calls] == ["127.0.0.1", "127.0.0.1", "127.0.0.2"]
    new = [a for a in service.check_alerts() if a["rule"] == "new_address"]
    assert len(new) == 1 and new[0]["seqs"] == [calls[-1]["seq"]] and "127.0.0.2" in new[0]["message"]
    assert key not in settings.audit_path.read_text(encoding="utf-8")


def test_an_alert_reaches_the_siem_at_syslog_alert_severity(tmp_path: Path, receiver) -> None:  # noqa: F811
    """A real rsyslogd over TLS (tests/test_audit_siem.py's receiver): the alert is forwarded
    like every entry, chained, with PRI 105 (facility 13 "log audit", severity 1 "alert")."""
    from app.audit.siem import SiemForwarder, SyslogTarget
    from app.platform.settings import KuraSettings

    service = KuraService(KuraSettings(data_dir=tmp_path / "data"))
    try:
        sam = User("sam", frozenset({"employee"}), ("sales",))
        for _ in range(10):
            with pytest.raises(AccessDenied):
                service.documents(sam)
        [alert] = [a for a in service.check_alerts() if a["rule"] == "refusals"]
        forwarder = SiemForwarder(service.audit, SyslogTarget("127.0.0.1", receiver.port),
                                  ca_file=receiver.pki / "ca.pem")
        forwarder.send_pending()
        lines = receiver.out.read_text(encoding="utf-8").splitlines()
        [raw] = [line for line in lines if '"action":"alert"' in line]
        assert raw.startswith("<105>1 ") and '"rule":"refusals"' in raw
        assert [e["seq"] for e in receiver.entries()] == [e["seq"] for e in service.audit.entries()]
    finally:
        service.close()
