"""Following the controller's services view: a long poll that never gives up.

    GET /v1/hosts/{host}/services?since=<etag>&wait=<s>

returns at once when the view changed since ``etag``, else holds the request
up to ``wait`` seconds: a change reaches the agent within one round trip and
an idle agent costs the controller one request per ``wait`` seconds.

What may go wrong, and what the loop does (it never ends before ``stop``):

* the controller is down or answers 5xx: retry after 1, 2, 4 ... 30 s; the
  view in memory keeps being served, and if the agent has none yet (it has
  just started) the last one saved in the state file is loaded;
* 404 (a controller from before this route): logged once, asked again every
  30 s;
* a reply that is not a view: logged, the old view kept.

Each new view is saved to the state file (view.Store) before the next poll.
"""
import copy
import logging
import threading
import time
import urllib.parse

from vpcctl.client import ApiError, Unreachable, path

log = logging.getLogger("vpc-agent.services")

WAIT = 25                 # the controller caps it at 30
MAX_BACKOFF = 30.0
OLD_CONTROLLER_RETRY = 30.0
MIN_INTERVAL = 1.0        # a controller that ignores `wait` is not polled in a hot loop


class Sync:
    def __init__(self, controller, store, wait=WAIT, clock=time.monotonic):
        """``controller``: vpcagent.controller.Controller (its client and host)."""
        self.host = controller.host
        self.client = copy.copy(controller.client)      # same URL, token, TLS ...
        self.client.timeout = wait + controller.client.timeout   # ... longer timeout
        self.store, self.wait, self.clock = store, wait, clock
        self.backoff = 0.0
        self.missing_logged = False
        self.failing = False
        self.polls = 0

    def url(self):
        q = {"wait": self.wait}
        if self.store.view.etag and self.store.loaded:
            q["since"] = self.store.view.etag
        return path("hosts", self.host, "services") + "?" + urllib.parse.urlencode(q)

    def _fail(self, what):
        self.backoff = min(MAX_BACKOFF, max(1.0, self.backoff * 2))
        if not self.failing:
            log.warning("services view: %s; retrying (up to every %.0f s), serving the "
                        "view %s", what, MAX_BACKOFF,
                        "in memory" if self.store.loaded else "saved on disk, if any")
        self.failing = True
        if not self.store.loaded:
            if self.store.load(self.host):
                log.info("services view: loaded %s (%d local ports) while the controller "
                         "is away", self.store.path, len(self.store.view.ports))
        return self.backoff

    def poll(self):
        """One request; returns how long to wait before the next."""
        self.polls += 1
        started = self.clock()
        try:
            raw = self.client.request("GET", self.url())
        except Unreachable as exc:
            return self._fail(str(exc))
        except ApiError as exc:
            if exc.status == 404:
                if not self.missing_logged:
                    log.warning("services view: the controller has no %s (%s: a "
                                "controller without this route, or a host it does not "
                                "know); DHCP and DNS are served from the saved view, asking "
                                "again every %.0f s", path("hosts", self.host, "services"),
                                exc.message, OLD_CONTROLLER_RETRY)
                    self.missing_logged = True
                if not self.store.loaded:
                    self.store.load(self.host)
                return OLD_CONTROLLER_RETRY
            return self._fail(f"the controller answered {exc.status}: {exc.message}")
        except Exception as exc:          # noqa: BLE001 -- never let the loop die
            return self._fail(f"{type(exc).__name__}: {exc}")
        if self.failing or self.missing_logged:
            log.info("services view: the controller answers again")
        self.failing = self.missing_logged = False
        self.backoff = 0.0
        old = self.store.view.etag if self.store.loaded else None
        if not isinstance(raw, dict) or raw.get("etag") is None:
            return self._fail("the reply is not a services view")
        if raw["etag"] != old:
            try:
                view = self.store.set(raw)
            except ValueError as exc:
                return self._fail(f"bad view: {exc}")
            log.info("services view %s: %d local ports, %d tenants", view.etag,
                     len(view.ports), len(view.tenants))
            return 0.0
        return max(0.0, MIN_INTERVAL - (self.clock() - started))

    def run(self, stop):
        while not stop.is_set():
            try:
                delay = self.poll()
            except Exception:             # noqa: BLE001
                log.exception("services view: poll failed")
                delay = MAX_BACKOFF
            if delay:
                stop.wait(delay)

    def start(self, stop):
        t = threading.Thread(target=self.run, args=(stop,), name="services-sync",
                             daemon=True)
        t.start()
        return t
