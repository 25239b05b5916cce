"""Fetch one URL politely and defensively: bytes or a DownloadError with a short reason key.

One `Downloader` per worker (built in the DoFn's setup()) holds a requests.Session, so connections
are pooled and reused across records. Rules, each a failure reason when broken:
- schemes: only those allowed (http, https by default; file: is opt-in) -> bad_scheme
- destinations: public addresses only, checked after DNS on every connection and redirect hop
  (guard.py; allow_private_addresses for local test servers) -> blocked_address
- one deadline, total_timeout_s, for the whole request: every attempt, backoff sleep and body byte
  (a server that drips one byte a second is cut at the deadline) -> timeout
- connect/read timeouts per attempt, capped by what is left of the deadline -> timeout
- bounded retries with exponential backoff on 5xx, 429 and connection errors (Retry-After
  honoured, capped) -> http_5xx / http_429 / connection_error once retries are spent
- other HTTP errors -> http_<code> (http_404, http_403...)
- body streamed and cut at max_bytes (Content-Length checked first) -> too_large
- at most max_redirects redirects -> redirect_loop
- X-Robots-Tag noai / noimageai (+ noindex / noimageindex as an option), for all agents or ours,
  and robots.txt as an option (cached per host) -> opted_out / robots_disallowed (status filtered)
`file:` URLs (absolute, or relative to `base_dir`) let the embedded sample run with no network.

`fetch(url)` retries in place (tests, one-URL debugging); the stage calls `attempt()` and schedules
retries itself so a Retry-After wait never holds a thread another host could use.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from urllib import robotparser
from urllib.parse import unquote, urlsplit

import requests

from uvd.sources.laion.guard import AddressGuard, BlockedAddress, Resolver, guarded_pool_classes

DEFAULT_USER_AGENT = "uvd/0.1 (image dataset builder for vision research; honours X-Robots-Tag noai)"
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai"})
NOINDEX_DIRECTIVES = frozenset({"noindex", "noimageindex"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
CHUNK = 64 * 1024


class DownloadError(Exception):
    """A URL that gave no usable body. `reason` goes to the failure row; `status` too."""

    def __init__(self, reason: str, detail: str = "", status: str = "failed") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.status = reason, detail, status
        self.retry_after: float | None = None  # seconds, from a 429/503 Retry-After header


class RetryableError(DownloadError):
    """An attempt that failed in a way another attempt may fix (5xx, 429, connection, timeout)."""


@dataclass(frozen=True)
class DownloadConfig:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0  # the whole request: all attempts, backoff and body
    retries: int = 2  # extra attempts after the first
    backoff_s: float = 0.5  # sleep backoff_s * 2**attempt between attempts
    max_retry_after_s: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allowed_schemes: tuple[str, ...] = ("http", "https")
    honour_opt_out: bool = True
    honour_noindex: bool = False  # also skip X-Robots-Tag noindex / noimageindex
    check_robots_txt: bool = False  # fetch robots.txt once per host and obey it
    allow_private_addresses: bool = False
    allowed_networks: tuple[str, ...] = ()
    base_dir: str = "."  # where relative file: URLs point
    pool_size: int = 16  # pooled connections per host: >= threads sharing the session


@dataclass(frozen=True)
class Fetched:
    data: bytes
    url: str  # final URL after redirects
    attempts: int


def opted_out(
    x_robots_tag: str | None, user_agent: str = DEFAULT_USER_AGENT, directives: frozenset[str] = OPT_OUT_DIRECTIVES
) -> bool:
    """True when an X-Robots-Tag value carries one of `directives` for all agents or for ours.

    Directives are comma separated; `name: directive` scopes one to a user agent (as in Google's
    X-Robots-Tag syntax), e.g. "otherbot: noai" does not apply to us.
    """
    if not x_robots_tag:
        return False
    agent = user_agent.split("/", 1)[0].strip().lower()
    scope = None
    for part in x_robots_tag.split(","):
        token = part.strip().lower()
        if ":" in token:
            name, _, rest = token.partition(":")
            name, rest = name.strip(), rest.strip()
            if (
                name
                and " " not in name
                and name not in ("unavailable_after", "max-snippet", "max-image-preview", "max-video-preview")
            ):
                scope, token = name, rest
        if token in directives and scope in (None, "*", agent):
            return True
    return False


class Downloader:
    """Per-worker fetcher: one pooled Session, all the limits of DownloadConfig. Thread safe."""

    def __init__(self, config: DownloadConfig | None = None, resolver: Resolver | None = None) -> None:
        self.config = config or DownloadConfig()
        self.resolver = resolver
        self.session: requests.Session | None = None
        self.directives = OPT_OUT_DIRECTIVES | (NOINDEX_DIRECTIVES if self.config.honour_noindex else frozenset())
        self._robots: dict[str, robotparser.RobotFileParser | None] = {}
        self._robots_lock = threading.Lock()
        self._setup_lock = threading.Lock()

    def setup(self) -> None:
        cfg = self.config
        session = requests.Session()
        session.headers["User-Agent"] = cfg.user_agent
        session.max_redirects = cfg.max_redirects
        # No proxy/netrc lookups from the environment: requests scans os.environ twice per request
        # for them (~0.4 ms CPU each on a worker's environment), and the address guard would refuse
        # a private proxy anyway.
        session.trust_env = False
        guard = AddressGuard(cfg.allow_private_addresses, cfg.allowed_networks, self.resolver)
        adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=cfg.pool_size, max_retries=0)
        adapter.poolmanager.pool_classes_by_scheme = guarded_pool_classes(guard)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    # --- the blocking API -------------------------------------------------------------------------
    def fetch(self, url: str) -> Fetched:
        """Every attempt in place, within one total deadline."""
        deadline = time.monotonic() + self.config.total_timeout_s
        attempt, started = 0, time.monotonic()
        while True:
            attempt += 1
            try:
                data, final = self.attempt(url, deadline)
                return Fetched(data, final, attempt)
            except RetryableError as exc:
                delay = self.retry_delay(attempt, exc)
                if attempt > self.config.retries or time.monotonic() + delay >= deadline:
                    raise self.give_up(exc, attempt, time.monotonic() - started) from None
                time.sleep(delay)

    # --- one attempt (the stage schedules retries itself) ----------------------------------------
    def attempt(self, url: str, deadline: float) -> tuple[bytes, str]:
        """One try before `deadline` (time.monotonic()): (body, final URL), or DownloadError /
        RetryableError (worth another attempt)."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in self.config.allowed_schemes:
            raise DownloadError("bad_scheme", f"{scheme or 'no'} scheme; allowed: {self.config.allowed_schemes}")
        if scheme == "file":
            return self._read_file(url), url
        if self.session is None:
            with self._setup_lock:
                if self.session is None:
                    self.setup()
        if self.config.check_robots_txt and not self._robots_allow(url, deadline):
            raise DownloadError("robots_disallowed", f"robots.txt of {urlsplit(url).netloc} disallows it", "filtered")
        return self._get(url, deadline)

    def retry_delay(self, attempt: int, error: DownloadError) -> float:
        """Seconds before attempt `attempt + 1`: exponential backoff, or the server's Retry-After."""
        delay = self.config.backoff_s * (2 ** (attempt - 1))
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.config.max_retry_after_s))
        return delay

    def give_up(self, error: DownloadError, attempts: int, elapsed_s: float) -> DownloadError:
        """The final failure after `attempts` tries, its detail saying how many and how long."""
        detail = f"{error.detail}; {attempts} attempt{'s' * (attempts > 1)} in {elapsed_s:.1f} s"
        if error.reason == "timeout" or elapsed_s >= self.config.total_timeout_s:
            detail += f" (total_timeout_s {self.config.total_timeout_s:g})"
        return DownloadError(error.reason, detail[:480], error.status)

    # --- internals ------------------------------------------------------------------------------
    def _get(self, url: str, deadline: float) -> tuple[bytes, str]:
        cfg = self.config
        left = deadline - time.monotonic()
        if left <= 0:
            raise RetryableError("timeout", f"no time left of total_timeout_s {cfg.total_timeout_s:g}")
        timeout = (min(cfg.connect_timeout_s, left), min(cfg.read_timeout_s, left))
        try:
            resp = self.session.get(url, stream=True, timeout=timeout)
        except BlockedAddress as exc:
            raise DownloadError("blocked_address", str(exc)[:200]) from None
        except requests.TooManyRedirects as exc:
            raise DownloadError("redirect_loop", str(exc)[:200]) from None
        except (
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise DownloadError("bad_scheme", str(exc)[:200]) from None
        except requests.Timeout as exc:
            raise RetryableError("timeout", _short(exc)) from None
        except requests.ConnectionError as exc:
            raise RetryableError("connection_error", _short(exc)) from None
        except requests.RequestException as exc:
            raise DownloadError("request_error", f"{type(exc).__name__}: {_short(exc)}"[:200]) from None
        with resp:
            self._check_headers(resp, url)
            return self._read_body(resp, deadline), resp.url

    def _check_headers(self, resp: requests.Response, url: str) -> None:
        cfg = self.config
        code = resp.status_code
        if code in RETRY_STATUSES:
            err = RetryableError("http_429" if code == 429 else "http_5xx", f"HTTP {code} from {url}")
            err.retry_after = _retry_after(resp.headers.get("Retry-After"))
            raise err
        if code >= 400:
            raise DownloadError(f"http_{code}", f"HTTP {code} from {url}")
        if code >= 300:
            raise DownloadError("redirect_error", f"HTTP {code} without a usable Location")
        tag = resp.headers.get("X-Robots-Tag")
        if cfg.honour_opt_out and opted_out(tag, cfg.user_agent, self.directives):
            raise DownloadError("opted_out", f"X-Robots-Tag: {tag}", "filtered")
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cfg.max_bytes:
            raise DownloadError("too_large", f"Content-Length {length} > max_bytes {cfg.max_bytes}")

    def _read_body(self, resp: requests.Response, deadline: float) -> bytes:
        """The body, read as it arrives (read1), with the socket timeout cut to the deadline."""
        cfg = self.config
        raw = resp.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        chunks, size = [], 0
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RetryableError("timeout", f"body not done by the deadline ({size} bytes read)")
                if sock is not None:
                    sock.settimeout(min(cfg.read_timeout_s, left))
                chunk = raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    if raw.length_remaining:  # Content-Length promised more
                        raise RetryableError("connection_error", f"body cut after {size} bytes")
                    break
                size += len(chunk)
                if size > cfg.max_bytes:
                    raise DownloadError("too_large", f"body over max_bytes {cfg.max_bytes}")
                chunks.append(chunk)
        except (DownloadError, RetryableError):
            resp.close()
            raise
        except Exception as exc:  # noqa: BLE001 - urllib3 read errors: timeout, reset, protocol
            resp.close()
            name = type(exc).__name__
            reason = "timeout" if "timeout" in name.lower() or "timed out" in str(exc) else "connection_error"
            raise RetryableError(reason, f"body: {name}: {_short(exc)}"[:200]) from None
        return b"".join(chunks)

    def _robots_allow(self, url: str, deadline: float) -> bool:
        """robots.txt of the URL's origin, fetched once per host (RFC 9309: 4xx allows all,
        5xx or unreachable disallows all)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            known = origin in self._robots
            parser = self._robots.get(origin)
        if not known:
            parser = robotparser.RobotFileParser()
            try:
                body, _ = self._get(origin + "/robots.txt", min(deadline, time.monotonic() + 5.0))
                parser.parse(body.decode("utf-8", "replace").splitlines())
            except DownloadError as exc:
                if exc.reason.startswith("http_4"):
                    parser.parse([])
                else:
                    parser.disallow_all = True
            with self._robots_lock:
                self._robots[origin] = parser
        agent = self.config.user_agent.split("/", 1)[0]
        return parser.can_fetch(agent, url)

    def _read_file(self, url: str) -> bytes:
        path = file_url_path(url, self.config.base_dir)
        try:
            size = os.path.getsize(path)
            if size > self.config.max_bytes:
                raise DownloadError("too_large", f"{size} bytes > max_bytes {self.config.max_bytes}")
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise DownloadError("file_not_found", path) from None
        except IsADirectoryError:
            raise DownloadError("file_not_found", f"{path} is a directory") from None
        except PermissionError as exc:
            raise DownloadError("file_unreadable", str(exc)[:200]) from None


def file_url_path(url: str, base_dir: str = ".") -> str:
    """file:///abs/x.jpg -> /abs/x.jpg; file:rel/x.jpg, file://./rel/x.jpg -> base_dir/rel/x.jpg."""
    rest = url[len("file:") :].split("#", 1)[0]
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host in ("", "localhost"):
            rest = "/" + path
        elif host in (".", ".."):
            rest = f"{host}/{path}"
        else:
            raise DownloadError("bad_scheme", f"file URL on another host ({host!r}) is not supported")
    path = unquote(rest)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def _short(exc: Exception) -> str:
    """The message without object addresses, so failure details are the same on every run."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(exc))[:200]


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
