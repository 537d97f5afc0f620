"""Employees' helpful / not-helpful verdicts: stored in the data dir for admins, and audited."""

from __future__ import annotations

import pytest

from app.identity.users import AccessDenied, User
from app.service import Answer

ANN = User("ann", frozenset({"employee"}))
BOSS = User("boss", frozenset({"admin"}))


def test_feedback_is_kept_for_the_admin_and_written_to_the_audit_log(settings):
    from app.service import KuraService

    service = KuraService(settings)
    try:
        answer = Answer("What is the leave policy?", [], None)
        answer.finish()
        text = answer.shown_text
        service.record_feedback(ANN, answer, helpful=False, comment="nothing found")
        [kept] = service.feedback(BOSS)
        assert (kept.user, kept.question, kept.answer, kept.helpful) == (
            "ann",
            "What is the leave policy?",
            text,
            False,
        )
        entry = [e for e in service.audit.entries() if e["action"] == "feedback"][-1]
        assert entry["user"] == "ann" and entry["helpful"] is False
        assert service.audit.verify() == []
        with pytest.raises(AccessDenied):
            service.feedback(ANN)  # only admins read feedback
    finally:
        service.close()
