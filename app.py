"""Svetlana web app entry point: page config and navigation, nothing else.

Run with ``streamlit run app.py``. The navigation here is hidden: every page calls
``ui.layout.page_setup``, which draws the sidebar and its links. A deep link that reaches a
page before this script has run (Streamlit then runs ``pages/<name>.py`` on its own) so
renders the same page with the same sidebar.
"""

import streamlit as st

from ui.layout import NAVIGATION

st.set_page_config(page_title="Svetlana", page_icon=":material/biotech:", layout="wide")
pages = [st.Page(path, title=label, icon=icon, default=(k == 0))
         for k, (path, label, icon) in enumerate(NAVIGATION)]
st.navigation(pages, position="hidden").run()
