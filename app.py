"""Svetlana web app entry point: page config and navigation, nothing else.

Run with ``streamlit run app.py``. Each page calls ``ui.layout.page_setup`` itself, so a
deep link that reaches a page before this script has run renders the same page.
"""

import streamlit as st

st.set_page_config(page_title="Svetlana", page_icon=":microscope:", layout="wide")

PAGES = [
    st.Page("pages/project.py", title="Project", icon=":material/folder_open:", default=True),
    st.Page("pages/annotate.py", title="Annotate", icon=":material/ads_click:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/category:"),
    st.Page("pages/dashboard.py", title="Dashboard", icon=":material/grid_on:"),
]
st.navigation(PAGES).run()
