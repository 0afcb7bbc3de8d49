"""Optional login through Streamlit's OpenID Connect support (``st.login``).

Nothing here is active unless ``.streamlit/secrets.toml`` has an ``[auth]`` section (README,
"Running it for a lab"). With one, the app is for logged-in users only; the user's e-mail
is then what :func:`ui.state.author` records with every label.
"""

from __future__ import annotations

import streamlit as st


def auth_configured() -> bool:
    """Whether ``secrets.toml`` (or ``st.secrets`` in a test) has an ``[auth]`` section."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # StreamlitSecretNotFoundError: no secrets.toml at all
        return False


def user_name() -> str:
    """E-mail (else name) of the logged-in user; empty when nobody is logged in."""
    if not st.user.get("is_logged_in"):
        return ""
    return str(st.user.get("email") or st.user.get("name") or "")


def login_gate() -> None:
    """Ask for a login before anything else of the page, when login is configured.

    Without ``[auth]`` this draws nothing. With it, a visitor who is not logged in sees a
    "Log in" button and the page stops there; a logged-in user sees who they are and a
    "Log out" button at the top of the sidebar. Call it first in every page's set-up.
    """
    if not auth_configured():
        return
    if st.user.get("is_logged_in"):
        st.sidebar.caption(f":material/person: {user_name()}")
        if st.sidebar.button("Log out", icon=":material/logout:", key="auth_logout"):
            st.logout()
        return
    st.title("Svetlana")
    st.write("This server is for the members of the lab: log in to see its projects.")
    if st.button("Log in", icon=":material/login:", type="primary", key="auth_login"):
        st.login()
    st.stop()
