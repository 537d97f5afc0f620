"""The auditor's use case: read, search, export and verify the tamper-evident log. Reading the
log is itself audited (what was read, with which filters, how many entries).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from app.audit.log import ChainProblem
from app.identity.users import ADMIN, AUDITOR, User
from app.service.parts import UseCase
from ingest.manifest import FileRecord

log = logging.getLogger(__name__)


class Auditing(UseCase):
    def audit_entries(self, user: User) -> list[dict]:
        user.require(AUDITOR, "read the audit log")
        self.audit.append(user=user.name, role=AUDITOR, action="audit_view")
        return list(self.audit.entries())

    def search_audit(
        self,
        user: User,
        who: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        """The newest `limit` matching audit entries (archive included), for auditors."""
        self._denied(user, AUDITOR, "read the audit log")
        found = list(self.audit.select(who, action, since, until))[-limit:]
        self.audit.append(
            user=user.name,
            role=AUDITOR,
            action="audit_view",
            filters={"user": who, "action": action, "since": since, "until": until},
            entries=len(found),
        )
        return found

    def export_audit(
        self,
        user: User,
        dest: Path,
        fmt: str = "jsonl",
        who: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> int:
        self._denied(user, AUDITOR, "export the audit log")
        count = self.audit.export(dest, fmt, who, action, since, until)
        self.audit.append(
            user=user.name,
            role=AUDITOR,
            action="audit_export",
            dest=str(dest),
            format=fmt,
            entries=count,
            filters={"user": who, "action": action, "since": since, "until": until},
        )
        return count

    def verify_audit(self, user: User, include_archive: bool = False) -> list[ChainProblem]:
        """Every break in the chain ([] when intact). The check is recorded only in a log that
        verified whole: an entry appended to a wiped or cut log would start its chain afresh and
        the next verify would find nothing wrong (measured); a log whose key is gone cannot be
        appended to at all. A broken log is reported to the caller and in the server's log."""
        self._denied(user, AUDITOR, "verify the audit log")
        problems = self.audit.verify(include_archive)
        if problems:
            log.warning("audit log verify by %s: %d problems, first: %s", user.name, len(problems), problems[0])
        elif self.audit.key_path.exists() and self.audit.has_history():
            self.audit.append(
                user=user.name, role=AUDITOR, action="audit_verify", problems=len(problems), archive=include_archive
            )
        return problems

    def audited_documents(self, user: User, doc_ids: Sequence[str]) -> dict[str, list[FileRecord]]:
        """For the auditor's view: the paths and groups of documents named in audit entries
        (a deleted document maps to no paths). Auditors and admins only."""
        if AUDITOR not in user.roles:
            self._denied(user, ADMIN, "resolve audited documents")
        return {doc_id: self.manifest.files_of(doc_id) for doc_id in dict.fromkeys(doc_ids)}
