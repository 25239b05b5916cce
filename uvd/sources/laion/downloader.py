"""Fetch one URL politely and defensively: bytes or a DownloadError with a short reason key.

One `Downloader` per worker (built in the DoFn's setup()) holds a requests.Session, so connections
are pooled across records. Rules, each a failure reason when broken:
- schemes: only those allowed (http, https, file by default) -> bad_scheme
- connect/read timeouts and a total deadline per attempt -> timeout
- bounded retries with exponential backoff on 5xx, 429 and connection errors (Retry-After
  honoured, capped) -> http_5xx / http_429 / connection_error once retries are spent
- other HTTP errors -> http_<code> (http_404, http_403...)
- body streamed and cut at max_bytes (Content-Length checked first) -> too_large
- at most max_redirects redirects -> redirect_loop
- X-Robots-Tag noai / noimageai (for all agents or ours) -> opted_out
`file:` URLs (absolute, or relative to `base_dir`) let the embedded sample run with no network.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import requests

DEFAULT_USER_AGENT = "uvd/0.1 (image dataset builder for vision research; honours X-Robots-Tag noai)"
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


class DownloadError(Exception):
    """A URL that gave no usable body. `reason` goes to the failure row; `status` too."""

    def __init__(self, reason: str, detail: str = "", status: str = "failed") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.status = reason, detail, status
        self.retry_after: float | None = None  # seconds, from a 429/503 Retry-After header


@dataclass(frozen=True)
class DownloadConfig:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0       # per attempt, whole body included
    retries: int = 2                    # extra attempts after the first
    backoff_s: float = 0.5              # sleep backoff_s * 2**attempt between attempts
    max_retry_after_s: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allowed_schemes: tuple[str, ...] = ("http", "https", "file")
    honour_opt_out: bool = True
    base_dir: str = "."                 # where relative file: URLs point
    pool_size: int = 16                 # pooled connections per host: >= threads sharing the session


@dataclass(frozen=True)
class Fetched:
    data: bytes
    url: str          # final URL after redirects
    attempts: int


def opted_out(x_robots_tag: str | None, user_agent: str = DEFAULT_USER_AGENT) -> bool:
    """True when an X-Robots-Tag value forbids AI use for all agents or for ours.

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
            if name and " " not in name and name not in ("unavailable_after", "max-snippet",
                                                          "max-image-preview", "max-video-preview"):
                scope, token = name, rest
        if token in OPT_OUT_DIRECTIVES and scope in (None, "*", agent):
            return True
    return False


class Downloader:
    """Per-worker fetcher: one pooled Session, all the limits of DownloadConfig."""

    def __init__(self, config: DownloadConfig | None = None) -> None:
        self.config = config or DownloadConfig()
        self.session: requests.Session | None = None

    def setup(self) -> None:
        session = requests.Session()
        session.headers["User-Agent"] = self.config.user_agent
        session.max_redirects = self.config.max_redirects
        adapter = requests.adapters.HTTPAdapter(pool_connections=64,
                                                pool_maxsize=self.config.pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def fetch(self, url: str) -> Fetched:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in self.config.allowed_schemes:
            raise DownloadError("bad_scheme", f"{scheme or 'no'} scheme; allowed: {self.config.allowed_schemes}")
        if scheme == "file":
            return Fetched(self._read_file(url), url, 1)
        if self.session is None:
            self.setup()
        last: DownloadError | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last))
            try:
                data, final = self._get(url)
                return Fetched(data, final, attempt + 1)
            except _Retryable as exc:
                last = exc.error
        assert last is not None
        raise last

    # --- internals ------------------------------------------------------------------------------
    def _delay(self, attempt: int, last: DownloadError | None) -> float:
        delay = self.config.backoff_s * (2 ** (attempt - 1))
        if last is not None and last.retry_after is not None:
            delay = max(delay, min(last.retry_after, self.config.max_retry_after_s))
        return delay

    def _get(self, url: str) -> tuple[bytes, str]:
        cfg = self.config
        start = time.monotonic()
        try:
            resp = self.session.get(url, stream=True, timeout=(cfg.connect_timeout_s, cfg.read_timeout_s))
        except requests.TooManyRedirects as exc:
            raise DownloadError("redirect_loop", str(exc)[:200]) from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidURL) as exc:
            raise DownloadError("bad_scheme", str(exc)[:200]) from None
        except requests.Timeout as exc:
            raise _Retryable(DownloadError("timeout", str(exc)[:200])) from None
        except requests.ConnectionError as exc:
            raise _Retryable(DownloadError("connection_error", str(exc)[:200])) from None
        except requests.RequestException as exc:
            raise DownloadError("request_error", f"{type(exc).__name__}: {exc}"[:200]) from None
        with resp:
            code = resp.status_code
            if code in RETRY_STATUSES:
                err = DownloadError("http_429" if code == 429 else "http_5xx", f"HTTP {code} from {url}")
                err.retry_after = _retry_after(resp.headers.get("Retry-After"))
                raise _Retryable(err)
            if code >= 400:
                raise DownloadError(f"http_{code}", f"HTTP {code} from {url}")
            if code >= 300:
                raise DownloadError("redirect_error", f"HTTP {code} without a usable Location")
            if cfg.honour_opt_out and opted_out(resp.headers.get("X-Robots-Tag"), cfg.user_agent):
                raise DownloadError("opted_out", f"X-Robots-Tag: {resp.headers.get('X-Robots-Tag')}", "filtered")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > cfg.max_bytes:
                raise DownloadError("too_large", f"Content-Length {length} > max_bytes {cfg.max_bytes}")
            chunks, size = [], 0
            try:
                for chunk in resp.iter_content(chunk_size=64 * 1024):
                    size += len(chunk)
                    if size > cfg.max_bytes:
                        raise DownloadError("too_large", f"body over max_bytes {cfg.max_bytes}")
                    if time.monotonic() - start > cfg.total_timeout_s:
                        raise _Retryable(DownloadError("timeout", f"body not done in {cfg.total_timeout_s} s"))
                    chunks.append(chunk)
            except requests.exceptions.ChunkedEncodingError as exc:
                raise _Retryable(DownloadError("connection_error", f"body cut: {exc}"[:200])) from None
            except requests.exceptions.ConnectionError as exc:  # read timeout mid-body surfaces here
                raise _Retryable(DownloadError("timeout", str(exc)[:200])) from None
            return b"".join(chunks), resp.url

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
    rest = url[len("file:"):].split("#", 1)[0]
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


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


class _Retryable(Exception):
    def __init__(self, error: DownloadError) -> None:
        super().__init__(str(error))
        self.error = error
