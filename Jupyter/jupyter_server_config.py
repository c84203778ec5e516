"""Jupyter Server configuration the portal puts into every server it starts.

The portal copies this file into each environment before its server starts (into a container with
the Docker Engine API's archive upload, or bound read-only into a process sandbox) at
/etc/portal/jupyter/jupyter_server_config.py, and names that directory in JUPYTER_CONFIG_PATH, the
highest-precedence config directory: it applies to the portal's own `jupyter server` command, to a
profile's own `command`, and to any image with jupyter_server >= 2 (its own config files still load,
and lose where they set the same keys).

Authentication follows JupyterHub's single-user model. The portal adds a per-environment secret in
the X-Portal-Secret header to every request it forwards, and never lets a browser send it. The
server accepts a request that carries it (compared in constant time), treats it as token
authentication is treated (no XSRF or Origin check of its own: the portal checks Origin), and
removes the header before any handler, a jupyter-server-proxy app or WebSocket peer sees it. There
is no token, so no page carries one (`data-jupyter-api-token`, JupyterLab's page_config), and no
login form: a request without the header (anything reaching the server other than through the
portal) gets 403, or a redirect to a login page that answers 403. The secret arrives in
PORTAL_SERVER_SECRET and is removed from the environment when the server reads it, so that kernels,
terminals and proxied apps do not inherit it.
"""

import hmac
import os
import sys

from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from traitlets import Bool, default, validate

try:
    from jupyter_server.auth.decorator import allow_unauthenticated
except ImportError:  # jupyter_server < 2.13 does not require authentication by default
    def allow_unauthenticated(method):
        return method

SECRET_HEADER = "X-Portal-Secret"
SECRET_VARIABLE = "PORTAL_SERVER_SECRET"
REFUSAL = "This Jupyter server is reached only through the course portal: open it from your course page.\n"


class PortalLoginHandler(LoginFormHandler):
    """The login URL the server redirects unauthenticated browsers to: no form, only a refusal.

    A request from the portal is authenticated already and goes on to `next` (within the server's
    base URL, as Jupyter's own login page does).
    """

    @allow_unauthenticated
    def get(self):
        if self.current_user:
            self._redirect_safe(self.get_argument("next", default=self.base_url))
        else:
            self.refuse()

    @allow_unauthenticated
    def post(self):
        self.refuse()

    def refuse(self):
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(REFUSAL)


class PortalIdentityProvider(IdentityProvider):
    """Authenticates requests by the portal's per-environment secret header."""

    need_token = Bool(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Read once, when the server starts (before any kernel, terminal or app), and gone from the
        # environment that those inherit.
        self._secret = os.environ.pop(SECRET_VARIABLE, "").encode("utf-8")

    @default("token")
    def _token_default(self):
        return ""

    @validate("token")
    def _no_token(self, proposal):
        # Whatever the command line or another config file says: a token would be rendered into pages.
        return ""

    @default("login_handler_class")
    def _login_handler_default(self):
        return PortalLoginHandler

    @property
    def login_available(self):
        return False

    @property
    def logout_available(self):
        return False

    def get_handlers(self):
        # The login URL must exist (unauthenticated pages redirect to it), but offers no form.
        return [(r"/login", self.login_handler_class)]

    def get_user(self, handler):
        known = getattr(handler, "_portal_user", None)
        if known is not None:
            return known
        headers = handler.request.headers
        presented = headers.get_list(SECRET_HEADER)
        if presented:
            del headers[SECRET_HEADER]  # nothing downstream ever sees it
        if len(presented) != 1 or not self._secret or not hmac.compare_digest(presented[0].encode("utf-8"), self._secret):
            return None
        # What token authentication sets: the server skips its XSRF and Origin checks (the portal
        # checks Origin for every request it forwards).
        handler._token_authenticated = True
        handler._portal_user = User(username="student", name="Student", display_name="Student")
        return handler._portal_user

    def validate_security(self, app, ssl_options=None):
        if not self._secret:
            self.log.critical(
                "%s is not set: this server only answers the course portal, which starts it with its secret.", SECRET_VARIABLE
            )
            sys.exit(1)


c = get_config()  # noqa: F821 (defined by the config loader)
c.ServerApp.identity_provider_class = PortalIdentityProvider
# The portal reaches the server under the browser's Host name and says who asked in X-Forwarded-*.
c.ServerApp.allow_remote_access = True
c.ServerApp.trust_xheaders = True
# Hub settings: JupyterLab leaves any token out of its page config, and its "Hub Control Panel" menu
# item leads to the portal's /home.
c.ServerApp.tornado_settings.update({"hub_prefix": "/", "hub_host": "", "user": "student"})
