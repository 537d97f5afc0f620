"""The service: the one door the UI, the CLI and the HTTP API use. Every method checks the
caller's role, every read filters by the caller's groups inside the Qdrant query, and every
action is audited. Rule: a request's rules (who may, which readers, how big, which path is
shown) live here, once; nothing here imports a door.

KuraService is only the sum of the use cases; each one is a short module of its own, so a reader
follows a question route -> use case -> retrieval -> store -> llm in a handful of files:

| module         | what it holds                                                          |
|----------------|------------------------------------------------------------------------|
| asking.py      | search, ask, previews, "show in context", exports, feedback            |
| conversations.py | saved conversations: the owner's only, re-checked when reopened      |
| documents.py   | ingest jobs, watched folders, documents, ACL, re-ingest, delete        |
| people.py      | accounts, roles and groups, personal API keys                          |
| auditing.py    | read, search, export and verify the audit log                          |
| audit_analytics.py | the auditor's workbench: overview, who saw what, alerts, reports   |
| operations.py  | health, model status and hot swap, backups, the ingest writer          |
| rules.py       | the size limits and the readers rule every door shares                 |
| parts.py       | the composition root: every part, built once, in a known order         |
| answer.py, jobs.py, backup.py, feedback.py, uploads.py, evaluation.py, conversation_store.py,     |
| conversation_export.py: what the use cases use                                                  |

Usage:
    service = KuraService(KuraSettings())                 # or KuraService(settings, embedder=e)
    report = service.ingest(admin, Path("/srv/docs"), groups=("everyone",))
    answer = service.ask(alice, "How many days of leave?")
    for token in answer.tokens(): print(token, end="")
    for citation in answer.citations(): print(citation.location)
"""

from __future__ import annotations

from app.service.answer import Answer
from app.service.asking import Asking
from app.service.audit_analytics import AuditAnalytics
from app.service.auditing import Auditing
from app.service.documents import Documents
from app.service.jobs import DocumentNotFound
from app.service.operations import Operations
from app.service.people import People

__all__ = ["Answer", "DocumentNotFound", "KuraService"]  # DocumentNotFound lives in app/service/jobs.py


class KuraService(Asking, Documents, People, Auditing, AuditAnalytics, Operations):
    """Every use case on one object, so each door holds one service for the life of its process."""
