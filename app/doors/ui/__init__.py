"""The Streamlit UI: Home.py (sign-in, navigation) and one page per view in views/.
Pages call KuraService methods only (through session.py), never a store or a model."""
