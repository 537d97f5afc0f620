"""The audit trail: the hash-chained log (log.py), its forwarding to a SIEM (siem.py), and the
auditor's analytics derived from it (index.py, analytics.py, alerts.py, report.py).
Rule: may use platform/; never identity/, the service or a door."""
