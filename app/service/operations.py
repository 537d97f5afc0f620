"""Running the appliance: system health, model status and hot swap, backups and the ingest
writer. Admin-only; refusals and backups are audited.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from app.identity.users import ADMIN, User
from app.service.backup import BackupError, BackupSummary, backup_parts
from app.service.parts import UseCase
from models.llm import load_llm
from models.registry import ModelEntry
from retrieval.store import EdgeStore

log = logging.getLogger(__name__)


class Operations(UseCase):
    def start_writer(self) -> None:
        """Start this process's ingest writer now (the server does, so watched folders run and
        interrupted jobs resume without waiting for the first upload)."""
        self.ingest_jobs.start()

    def use_model(self, user: User, name: str) -> ModelEntry:
        """Switch the answering LLM to the manifest's model `name` without a restart (hot swap):
        the new model loads beside the old, then takes over between two answers."""
        self._denied(user, ADMIN, "switch the LLM", model=name)
        entry = self.models.use(name)  # verifies checksum, GGUF and chat template first
        s = self.settings
        if s.llm_path:
            log.warning("KURA_LLM_PATH=%s is set and wins over the manifest at the next start", s.llm_path)
        new = load_llm(Path(entry.path), None, s.llm_context_tokens, s.llm_threads, s.llm_gpu_layers)
        self.llm_queue.swap(new)
        self.parts.llm.set(new)
        self.audit.append(user=user.name, role=ADMIN, action="use_model", model=entry.name, sha256=entry.sha256)
        return entry

    def health(self, user: User) -> dict[str, Any]:
        """Counts and sizes for the admin's system page (no model is loaded for this)."""
        self._denied(user, ADMIN, "see system health")
        data = self.settings.data_dir
        usage = shutil.disk_usage(data)
        store_bytes = sum(p.stat().st_size for p in self.settings.store_dir.rglob("*") if p.is_file())
        return {
            "data_dir": str(data),
            "documents": len(self.manifest.documents()),
            "files": len(self.manifest.all_files()),
            "chunks": self.store.count() if not self.settings.qdrant_url else None,
            # The embedded store's HNSW index: building, chunks outside it, the last build's phases.
            "index": vars(self.store.index_status()) if isinstance(self.store, EdgeStore) else None,
            "store_bytes": store_bytes,
            "disk_free_bytes": usage.free,
            "disk_total_bytes": usage.total,
            "audit_entries": sum(1 for _ in self.audit.entries()),
        }

    def model_status(self, user: User) -> dict[str, Any]:
        """Which LLM and embedder answer, and where the LLM runs (loads them if needed)."""
        user.require(ADMIN, "see model status")
        runtime = self.llm.runtime
        return {
            "llm": self.llm.name,  # after a hot swap, the model that answers now
            "embedder": self.embedder.name,
            "device": runtime.device,
            "reason": runtime.reason,
            "threads": runtime.threads,
            "threads_batch": runtime.threads_batch,
            "gpu_layers": runtime.gpu_layers,
        }

    def backup(self, user: User, dest: Path) -> BackupSummary:
        """A consistent backup written by the process that owns the store (the embedded store
        allows one opener, so `kura backup` from a shell cannot run beside the UI)."""
        self._denied(user, ADMIN, "back up", dest=str(dest))
        try:
            summary = backup_parts(self.parts, dest)
        except BackupError as exc:
            self.audit.append(
                user=user.name, role=ADMIN, action="backup", dest=str(dest), outcome="refused", reason=str(exc)
            )
            raise
        # Appended after the copy: the backup's audit chain ends just before this entry.
        self.audit.append(
            user=user.name,
            role=ADMIN,
            action="backup",
            dest=str(dest),
            files=summary.files,
            bytes=summary.bytes,
            chunks=summary.chunks,
        )
        return summary
