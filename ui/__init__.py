"""Streamlit glue shared by the pages (loaders, canvas adapter, overlays, job polling)."""
