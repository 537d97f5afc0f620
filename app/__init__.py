"""kura application layer: settings, the service facade, the CLI and the Streamlit UI."""
