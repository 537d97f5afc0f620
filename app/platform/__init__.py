"""What every part of the app runs on: typed settings, JSON logs, Prometheus metrics, private files.
Rule: never imports identity/, the service or a door."""
