"""The LAION downloader against a scripted loopback server: every rule and failure reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.http_server import Reply, http_server  # noqa: F401 - the fixture
from uvd.sources.laion.downloader import (
    DownloadConfig,
    Downloader,
    DownloadError,
    file_url_path,
    opted_out,
)

SAMPLE = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "images"
JPEG = (SAMPLE / "chelsea_cat.jpg").read_bytes()
FAST = dict(
    connect_timeout_s=1.0,
    read_timeout_s=0.3,
    total_timeout_s=2.0,
    retries=2,
    backoff_s=0.01,
    allow_private_addresses=True,
)  # the loopback test server


@pytest.fixture
def downloader():
    d = Downloader(DownloadConfig(**FAST))
    d.setup()
    yield d
    d.close()


def _reason(downloader: Downloader, url: str) -> str:
    with pytest.raises(DownloadError) as e:
        downloader.fetch(url)
    return e.value.reason


def test_200_returns_the_exact_body_with_our_user_agent(http_server, downloader):
    url = http_server.add("/cat.jpg", Reply(200, JPEG, {"Content-Type": "image/jpeg"}))
    got = downloader.fetch(url)
    assert got.data == JPEG and got.attempts == 1 and got.url == url
    assert http_server.user_agents[-1].startswith("uvd/")


def test_404_is_not_retried(http_server, downloader):
    url = http_server.add("/gone.jpg", Reply(404, b"nope"))
    assert _reason(downloader, url) == "http_404"
    assert http_server.hits["/gone.jpg"] == 1


def test_500_then_200_is_retried(http_server, downloader):
    url = http_server.add("/flaky.jpg", Reply(500), Reply(200, JPEG))
    got = downloader.fetch(url)
    assert got.data == JPEG and got.attempts == 2
    assert http_server.hits["/flaky.jpg"] == 2


def test_persistent_5xx_gives_up_after_bounded_retries(http_server, downloader):
    url = http_server.add("/down.jpg", Reply(503))
    assert _reason(downloader, url) == "http_5xx"
    assert http_server.hits["/down.jpg"] == 3  # 1 + retries


def test_429_honours_retry_after_then_succeeds(http_server):
    d = Downloader(DownloadConfig(**{**FAST, "max_retry_after_s": 0.2}))
    url = http_server.add("/busy.jpg", Reply(429, headers={"Retry-After": "5"}), Reply(200, JPEG))
    start = time.monotonic()
    assert d.fetch(url).data == JPEG
    assert 0.2 <= time.monotonic() - start < 2.0  # waited, but capped at max_retry_after_s


def test_slow_response_past_the_read_timeout(http_server):
    d = Downloader(DownloadConfig(**{**FAST, "retries": 0}))
    url = http_server.add("/slow.jpg", Reply(200, JPEG, delay_s=1.5))
    start = time.monotonic()
    assert _reason(d, url) == "timeout"
    assert time.monotonic() - start < 1.4


def test_slow_body_past_the_total_deadline(http_server):
    d = Downloader(DownloadConfig(**{**FAST, "retries": 0, "read_timeout_s": 1.0, "total_timeout_s": 0.5}))
    body = b"\xff" * (64 * 1024 * 8)
    url = http_server.add("/trickle.jpg", Reply(200, body, body_delay_s=0.15))
    assert _reason(d, url) == "timeout"


def test_body_over_the_cap_by_content_length(http_server):
    d = Downloader(DownloadConfig(**{**FAST, "max_bytes": 100_000}))
    url = http_server.add("/big.jpg", Reply(200, b"\0" * 200_000))
    assert _reason(d, url) == "too_large"


def test_body_over_the_cap_without_content_length_is_cut_while_streaming(http_server):
    d = Downloader(DownloadConfig(**{**FAST, "max_bytes": 100_000}))
    url = http_server.add("/stream.jpg", Reply(200, b"\0" * 1_000_000, send_length=False))
    assert _reason(d, url) == "too_large"
    ok = http_server.add("/small.jpg", Reply(200, JPEG, send_length=False))
    assert d.fetch(ok).data == JPEG


def test_redirect_loop(http_server, downloader):
    http_server.add("/a", Reply(302, headers={"Location": "/b"}))
    url = http_server.add("/b", Reply(302, headers={"Location": "/a"}))
    assert _reason(downloader, url) == "redirect_loop"
    assert http_server.hits["/a"] + http_server.hits["/b"] <= DownloadConfig().max_redirects + 2


def test_redirect_within_the_cap_is_followed(http_server, downloader):
    final = http_server.add("/final.jpg", Reply(200, JPEG))
    url = http_server.add("/moved.jpg", Reply(301, headers={"Location": "/final.jpg"}))
    got = downloader.fetch(url)
    assert got.data == JPEG and got.url == final


def test_redirect_to_a_forbidden_scheme(http_server, downloader):
    url = http_server.add("/sneaky", Reply(302, headers={"Location": "ftp://example.com/x.jpg"}))
    assert _reason(downloader, url) == "bad_scheme"


@pytest.mark.parametrize("header", ["noai", "noindex, noimageai", "uvd: noai", "*: noimageai"])
def test_x_robots_tag_opt_out(http_server, downloader, header):
    url = http_server.add("/private.jpg", Reply(200, JPEG, {"X-Robots-Tag": header}))
    with pytest.raises(DownloadError) as e:
        downloader.fetch(url)
    assert e.value.reason == "opted_out" and e.value.status == "filtered"


def test_opt_out_for_another_agent_does_not_apply(http_server, downloader):
    url = http_server.add("/other.jpg", Reply(200, JPEG, {"X-Robots-Tag": "otherbot: noai, noindex"}))
    assert downloader.fetch(url).data == JPEG


@pytest.mark.parametrize("header", ["noindex", "uvd: noimageindex"])
def test_noindex_is_an_opt_out_only_when_asked(http_server, header):
    url = http_server.add("/unindexed.jpg", Reply(200, JPEG, {"X-Robots-Tag": header}))
    assert Downloader(DownloadConfig(**FAST)).fetch(url).data == JPEG
    with pytest.raises(DownloadError) as e:
        Downloader(DownloadConfig(**FAST, honour_noindex=True)).fetch(url)
    assert (e.value.reason, e.value.status) == ("opted_out", "filtered")


def test_robots_txt_is_obeyed_when_asked_and_fetched_once_per_host(http_server):
    http_server.add("/robots.txt", Reply(200, b"User-agent: uvd\nDisallow: /private/\n"))
    ok = http_server.add("/public/a.jpg", Reply(200, JPEG))
    no = http_server.add("/private/b.jpg", Reply(200, JPEG))
    d = Downloader(DownloadConfig(**FAST, check_robots_txt=True))
    assert d.fetch(ok).data == JPEG
    with pytest.raises(DownloadError) as e:
        d.fetch(no)
    assert (e.value.reason, e.value.status) == ("robots_disallowed", "filtered")
    assert http_server.hits["/private/b.jpg"] == 0 and http_server.hits["/robots.txt"] == 1
    assert Downloader(DownloadConfig(**FAST)).fetch(no).data == JPEG  # off by default


def test_opt_out_parsing():
    assert opted_out("NoAI")
    assert not opted_out(None) and not opted_out("noindex, nofollow")
    assert not opted_out("unavailable_after: 25 Jun 2010 15:00:00 PST")
    assert opted_out("googlebot: noindex, uvd: noimageai")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.jpg", "data:image/png;base64,AAAA", "a.jpg", "javascript:alert(1)"]
)
def test_bad_scheme(downloader, url):
    assert _reason(downloader, url) == "bad_scheme"


def test_file_urls_absolute_relative_and_missing(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x.jpg").write_bytes(JPEG)
    d = Downloader(DownloadConfig(base_dir=str(tmp_path / "meta"), allowed_schemes=("file",)))
    assert d.fetch(f"file://{tmp_path}/imgs/x.jpg").data == JPEG
    assert d.fetch("file:../imgs/x.jpg").data == JPEG
    assert d.fetch("file://../imgs/x.jpg").data == JPEG
    with pytest.raises(DownloadError) as e:
        d.fetch("file:../imgs/missing.jpg")
    assert e.value.reason == "file_not_found"
    small = Downloader(DownloadConfig(base_dir=str(tmp_path), max_bytes=100, allowed_schemes=("file",)))
    with pytest.raises(DownloadError) as e:
        small.fetch("file:imgs/x.jpg")
    assert e.value.reason == "too_large"


def test_file_url_path_forms():
    assert file_url_path("file:///a/b.jpg", "/base") == "/a/b.jpg"
    assert file_url_path("file://localhost/a/b.jpg", "/base") == "/a/b.jpg"
    assert file_url_path("file:x/b%20c.jpg", "/base") == "/base/x/b c.jpg"
    with pytest.raises(DownloadError):
        file_url_path("file://otherhost/a.jpg")


def test_file_scheme_can_be_disallowed(tmp_path):
    d = Downloader(DownloadConfig(allowed_schemes=("http", "https")))
    with pytest.raises(DownloadError) as e:
        d.fetch(f"file://{tmp_path}/x.jpg")
    assert e.value.reason == "bad_scheme"


def test_connection_refused_is_retried_then_reported():
    d = Downloader(DownloadConfig(**FAST))
    with pytest.raises(DownloadError) as e:
        d.fetch("http://127.0.0.1:9/none.jpg")  # discard port: nothing listens
    assert e.value.reason == "connection_error"
