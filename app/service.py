"""The one door the UI, the CLI and the HTTP API use. Every method checks the caller's role,
every read filters by the caller's groups inside the Qdrant query, and every action is audited.

KuraService is only the sum of the use cases; each one is a short module of its own, so a reader
follows a question page -> use case -> retrieval -> store -> llm in five files:

| module                      | use case                                                        |
|-----------------------------|-----------------------------------------------------------------|
| app/usecases/asking.py      | search, ask, previews, "show in context", exports, feedback     |
| app/usecases/documents.py   | ingest jobs, watched folders, documents, ACL, re-ingest, delete |
| app/usecases/people.py      | accounts, roles and groups, personal API keys                   |
| app/usecases/auditing.py    | read, search, export and verify the audit log                   |
| app/usecases/operations.py  | health, model status and hot swap, backups, the ingest writer   |
| app/usecases/components.py  | the parts they share, built once from settings (no door here)   |

Usage:
    service = KuraService(KuraSettings())
    report = service.ingest(admin, Path("/srv/docs"), groups=("everyone",))
    answer = service.ask(alice, "How many days of leave?")
    for token in answer.tokens(): print(token, end="")
    for citation in answer.citations(): print(citation.location)
"""

from __future__ import annotations

from app.answer import Answer
from app.ingest_jobs import DocumentNotFound
from app.usecases.asking import Asking
from app.usecases.auditing import Auditing
from app.usecases.documents import Documents
from app.usecases.operations import Operations
from app.usecases.people import People

__all__ = ["Answer", "DocumentNotFound", "KuraService"]  # DocumentNotFound lives in app/ingest_jobs.py


class KuraService(Asking, Documents, People, Auditing, Operations):
    """Every use case on one object, so each door holds one service for the life of its process."""
