"""The doors: Streamlit pages (ui/), the HTTP API and sign-in (http/), the `kura` command (cli/).
Rule: a door calls a KuraService method and translates its answer (page widget, HTTP status,
exit code). Who may, which readers, how big and which path is shown are decided in the service."""
