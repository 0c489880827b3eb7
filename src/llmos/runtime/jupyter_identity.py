"""How a notebook's Jupyter knows the LLMOS proxy: by the notebook's secret, which no page shows.

This module runs inside the notebook's Jupyter, not in LLMOS
(``--ServerApp.identity_provider_class``, see :mod:`llmos.runtime.jupyter_auth`):
in cluster mode it is a file of the notebook's Secret, mounted in a pod whose
image has no LLMOS, so it imports nothing of LLMOS. The secret comes in
``LLMOS_NOTEBOOK_SECRET`` and is taken out of the environment at once, so the
kernels and terminals Jupyter starts do not inherit it.

Jupyter's own token auth would do, but JupyterLab writes the token into every
page it serves (``page_config.token``), and the proxy passes pages on as they
are: the browser would hold the secret, and keep it after its user lost
access. Here a request is let in only when it carries ``Authorization: token
SECRET``, which only the proxy adds, and the token Jupyter knows (what the
pages show) is empty. Such a request counts as token-authenticated, as it did
before: Jupyter then skips its own ``_xsrf`` check, and the proxy's CSRF check
stands in for it.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

SECRET_ENV = "LLMOS_NOTEBOOK_SECRET"


class ProxySecretIdentity(IdentityProvider):
    """Lets in what carries the notebook's secret; there is no login page, and no token to show."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = ""  # what pages show; never the secret
        self._secret = os.environ.pop(SECRET_ENV, "").encode()
        if not self._secret:
            raise SystemExit(f"{SECRET_ENV} is not set: this Jupyter would let anyone in")

    def get_user(self, handler: web.RequestHandler) -> User | None:
        scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "token" or not hmac.compare_digest(
            value.strip().encode(), self._secret
        ):
            return None
        # Jupyter's mark for "not a forgeable cookie" (its own get_user sets it the same way).
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return User(username="llmos", name="LLMOS", display_name="LLMOS")

    @property
    def login_available(self) -> bool:
        return False
