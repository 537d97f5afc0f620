"""The audit trail: the hash-chained log (log.py) and its forwarding to a SIEM (siem.py).
Rule: may use platform/; never identity/, the service or a door."""
