"""The admin's Jobs page (app/doors/ui/views/jobs.py), driven in-process by AppTest against a real data
directory: the jobs the UI's own service ran, a watched folder added through the form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.doors.safe_text import text
from app.identity.accounts import Accounts
from app.identity.users import User
from app.platform.settings import KuraSettings

REPO = Path(__file__).resolve().parent.parent
HOME = str(REPO / "app" / "doors" / "ui" / "Home.py")
JOBS = str(REPO / "app" / "doors" / "ui" / "views" / "jobs.py")
PASSWORD = "Maple-harbor-77"


@pytest.fixture
def ui_service(data_dir: Path, embedder) -> Iterator:
    """The one service installed the way `kura serve`'s lifespan installs it (app/doors/http/server.py)."""
    accounts = Accounts(KuraSettings().users_path)
    accounts.add("boss", PASSWORD, ["admin", "employee"])
    accounts.close()
    from app.doors.http import runtime
    from app.service import KuraService

    service = KuraService(KuraSettings(), embedder=embedder)
    runtime.install(service)
    service.start_writer()
    yield service
    runtime.uninstall()
    service.close()


def test_admin_sees_every_job_and_adds_a_watched_folder(ui_service, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "<img src=x onerror=alert(1)>.md").write_text("# Leave\n\nTwenty days of leave.\n")
    admin = User("boss", frozenset({"admin", "employee"}))
    ui_service.ingest(admin, folder, ["staff"])

    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.text_input(key="login_name").input("boss")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    at.switch_page(JOBS).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Ingestion jobs"]
    jobs = at.dataframe[0].value
    assert list(jobs["Job"]) == [1] and list(jobs["State"]) == ["done"]
    assert str(folder) in list(jobs["Target"])[0] and "ingested 1" in list(jobs["Report"])[0]
    assert not any("onerror" in m.value for m in at.markdown)  # the hostile name is data only

    at.text_input(key="jobs_watch_path").input(str(folder))
    at.text_input(key="jobs_watch_groups").input("hr")
    at.text_input(key="jobs_watch_every").input("2h")
    next(b for b in at.button if b.label == "Watch folder").click().run()
    assert not at.exception, at.exception
    assert any(text(str(folder)) in s.value for s in at.success), [e.value for e in at.error]  # shown escaped
    watched = ui_service.watched_folders(admin)
    assert [(w.path, w.groups, w.every_s) for w in watched] == [(str(folder), ("hr",), 7200.0)]
    entries = [e for e in ui_service.audit.entries() if e["action"] == "folder_watch"]
    assert entries and entries[-1]["user"] == "boss"
