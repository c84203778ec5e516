# JupyterHub configuration used by bench/lti-launch.sh (the comparison server).
#
# Everything variable comes from the environment the script sets:
#   BENCH_JH_PORT      port of the hub's own HTTP server on 127.0.0.1
#   BENCH_JH_DIR       scratch directory (sqlite database, cookie secret, pid file)
#   BENCH_LTI_KEY      LTI 1.1 consumer key      (same as the portal's)
#   BENCH_LTI_SECRET   LTI 1.1 consumer secret   (same as the portal's)
#
# The proxy problem. JupyterHub normally sits behind configurable-http-proxy (CHP), an npm package
# that cannot be installed here. We measure only the launch (the LTI login POST), which the hub
# itself serves under /hub/, so the benchmark sends its requests straight to the hub's own port
# (hub_bind_url) at http://127.0.0.1:$BENCH_JH_PORT/hub/lti/launch, and replaces CHP with the
# in-memory NullProxy below. Setting only `ConfigurableHTTPProxy.should_start = False` is not
# enough: the hub still calls CHP's REST API at start-up (check_routes) and refuses to start
# when nothing answers there. A Proxy subclass that keeps its route table in a dict satisfies
# every call the hub makes (start-up check_routes, add/delete on spawn, the periodic check),
# starts no process and listens on nothing. Going direct also means no proxy hop in front of the
# hub, which flatters JupyterHub slightly (in production every launch crosses CHP first).
import os

from jupyterhub.proxy import Proxy
from traitlets import default

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

port = int(os.environ["BENCH_JH_PORT"])
workdir = os.environ["BENCH_JH_DIR"]


class NullProxy(Proxy):
    """A proxy that only remembers routes; nothing is ever proxied."""

    @default("should_start")
    def _should_start_default(self):
        return False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._routes = {}

    async def add_route(self, routespec, target, data):
        self._routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self._routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self._routes)


c.JupyterHub.proxy_class = NullProxy

# The hub's own server: this is what wrk talks to.
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{port}"
# The public (proxy) URL is never served; keep it on loopback and off the hub's port.
c.JupyterHub.bind_url = "http://127.0.0.1:1/"

c.JupyterHub.db_url = "sqlite:///" + os.path.join(workdir, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(workdir, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(workdir, "jupyterhub.pid")
# Same verbosity as the portal's `log_level: warning`: no per-request access log lines.
c.JupyterHub.log_level = "WARN"

# LTI 1.1 with the same consumer as the portal.
c.JupyterHub.authenticator_class = "ltiauthenticator.lti11.auth.LTI11Authenticator"
c.LTI11Authenticator.consumers = {os.environ["BENCH_LTI_KEY"]: os.environ["BENCH_LTI_SECRET"]}
# user_id is what the portal keys users on too; also avoids the per-launch deprecation warning
# that the default (custom_canvas_user_id) logs.
c.LTI11Authenticator.username_key = "user_id"
# JupyterHub >= 5 denies everyone unless told otherwise; ltiauthenticator does not override it.
c.Authenticator.allow_all = True

# A spawner is configured but never started: the benchmark stops at the login redirect
# (the browser would only start a server on its next request, GET /hub/spawn or /hub/user/...).
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.cleanup_servers = False
