"""The HTTP door: `kura serve` (server.py: Streamlit UI + API in one ASGI app), sign-in routes
(signin.py), the REST and OpenAI-compatible API (api/), and the process's one service (runtime.py)."""
