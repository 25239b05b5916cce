"""Issue 15 on the LAION stage: one deadline per request, SSRF refused, file: opt-in, row ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.http_server import Reply, http_server  # noqa: F401 - the fixture
from uvd.sources.laion import pipeline as laion
from uvd.sources.laion.downloader import DownloadConfig, Downloader, DownloadError
from uvd.sources.laion.record import Fetched as FetchedRow
from uvd.sources.laion.record import fetched_rows, record_id

ROOT = Path(__file__).resolve().parents[2]
JPEG = (ROOT / "uvd" / "sample" / "images" / "chelsea_cat.jpg").read_bytes()
LOOPBACK = dict(allow_private_addresses=True)


def _fail(d: Downloader, url: str) -> DownloadError:
    with pytest.raises(DownloadError) as e:
        d.fetch(url)
    return e.value


# --- point 3: the total deadline holds for the whole request ------------------------------------
def test_a_server_that_drips_bytes_is_cut_at_the_total_deadline(http_server):
    # Content-Length 40, then one byte every 0.2 s: each read is within read_timeout_s, the body never ends in time.
    url = http_server.add("/drip.jpg", Reply(200, b"x" * 40, chunk=1, body_delay_s=0.2))
    d = Downloader(DownloadConfig(read_timeout_s=0.5, total_timeout_s=1.0, retries=2, backoff_s=0.01, **LOOPBACK))
    start = time.monotonic()
    err = _fail(d, url)
    elapsed = time.monotonic() - start
    assert err.reason == "timeout" and elapsed < 1.6, (err, elapsed)
    assert "total_timeout_s 1" in err.detail and "attempt" in err.detail


def test_retries_and_backoff_stay_inside_the_deadline(http_server):
    url = http_server.add("/down.jpg", Reply(503))
    d = Downloader(DownloadConfig(total_timeout_s=1.0, retries=3, backoff_s=0.4, **LOOPBACK))
    start = time.monotonic()
    err = _fail(d, url)
    elapsed = time.monotonic() - start
    assert err.reason == "http_5xx" and elapsed < 1.2, elapsed
    attempts = http_server.hits["/down.jpg"]
    assert attempts == 2 and f"{attempts} attempts in" in err.detail  # 0.4 s fits, 0.8 s more does not


# --- point 11: server-side request forgery --------------------------------------------------------
def test_loopback_by_name_is_refused_by_default(http_server):
    url = http_server.add("/a.jpg", Reply(200, JPEG)).replace("127.0.0.1", "localhost")
    err = _fail(Downloader(DownloadConfig()), url)
    assert (err.reason, err.status) == ("blocked_address", "failed")
    assert http_server.hits["/a.jpg"] == 0
    assert Downloader(DownloadConfig(**LOOPBACK)).fetch(url).data == JPEG  # the explicit opt-in


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "10.1.2.3",
        "192.168.0.7",
        "172.16.5.5",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_private_and_link_local_targets_are_refused_after_resolution(address):
    asked = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [address]

    d = Downloader(DownloadConfig(retries=0, connect_timeout_s=0.2), resolver=resolver)
    err = _fail(d, "http://internal.example:8080/x.jpg")
    assert err.reason == "blocked_address" and asked == ["internal.example"]
    literal = f"http://[{address}]/x.jpg" if ":" in address else f"http://{address}/x.jpg"
    assert _fail(d, literal).reason == "blocked_address"  # IP literals need no lookup


def test_a_redirect_hop_to_a_private_address_is_refused(http_server):
    port = http_server.httpd.server_address[1]
    http_server.add("/hop.jpg", Reply(302, headers={"Location": f"http://intranet.example:{port}/secret"}))
    resolved = {"public.example": ["127.0.0.1"], "intranet.example": ["10.0.0.5"]}
    d = Downloader(
        DownloadConfig(retries=0, allowed_networks=("127.0.0.1/32",)), resolver=lambda host, _port: resolved[host]
    )
    err = _fail(d, f"http://public.example:{port}/hop.jpg")
    assert err.reason == "blocked_address" and "10.0.0.5" in err.detail
    assert http_server.hits["/hop.jpg"] == 1 and http_server.hits["/secret"] == 0


# --- point 10: file: is opt-in, rows without a URL keep their position, provenance keeps the URL -----
def test_file_urls_are_off_by_default_and_the_sample_manifest_opts_in(tmp_path):
    (tmp_path / "a.jpg").write_bytes(JPEG)
    assert _fail(Downloader(DownloadConfig(base_dir=str(tmp_path))), "file:a.jpg").reason == "bad_scheme"
    assert laion.Config(input="x.parquet").download().allowed_schemes == ("http", "https")
    manifest = yaml.safe_load((ROOT / "manifests" / "sample.yaml").read_text())
    assert "file" in manifest["sources"]["laion"]["options"]["allowed_schemes"]


def test_rows_without_a_url_get_their_position_as_record_id():
    rows = [
        {"url": None, "hash": None, "_position": "meta.parquet#7"},
        {"url": None, "hash": None, "_position": "meta.parquet#8"},
    ]
    ids = [record_id(r) for r in rows]
    assert ids == ["meta.parquet#7", "meta.parquet#8"]
    failures = [
        row
        for r in rows
        for _, row in fetched_rows(
            FetchedRow(r, error=("missing_url", "", "failed")), laion.Config("x").render(), laion.Config("x").filters()
        )
    ]
    assert [f["record_id"] for f in failures] == ids


def test_dns_answers_are_cached_and_checked_for_each_new_connection(http_server):
    # no Content-Length: the server closes each connection, so each fetch connects anew
    urls = [http_server.add(f"/c{i}.jpg", Reply(200, JPEG, send_length=False)) for i in range(3)]
    asked = []

    def resolver(host: str, _port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    d = Downloader(DownloadConfig(retries=0, allowed_networks=("127.0.0.1/32",)), resolver=resolver)
    for url in urls:
        assert d.fetch(url.replace("127.0.0.1", "public.example")).data == JPEG
    assert asked == ["public.example"]
