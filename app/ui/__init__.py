"""The Streamlit UI. Pages call app/service.py only."""
