"""Proxies (``proxy=``, ``HTTP(S)_PROXY`` / ``NO_PROXY``), custom TLS (``ssl=``) and where
the API key may go."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _forward_proxy import forward_proxy
from _sdk_helpers import serve
from aiohttp import web

from aurous_async import APIConnectionError, AsyncAurous, BadRequestError, RetryPolicy
from aurous_async._requester import Call

pytestmark = pytest.mark.anyio

KEY = "al_live_proxy_test_key"
NO_RETRY = RetryPolicy(max_attempts=1, timeout=10.0)
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy variables set, in either case."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class Origin:
    """An API stand-in answering ``GET /v1/team`` and recording the headers it saw."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def team(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        return web.json_response({"id": "team_1", "name": "Proxied"})

    @contextlib.asynccontextmanager
    async def running(self, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
        """Serve on a free loopback port (over TLS with ``tls``); yield the base URL."""
        if tls is None:
            async with serve([("GET", "/v1/team", self.team)]) as base:
                yield base
            return
        app = web.Application()
        app.router.add_get("/v1/team", self.team)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"https://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


def client_for(base_url: str, **options: object) -> AsyncAurous:
    return AsyncAurous(KEY, base_url=base_url, retry=NO_RETRY, **options)  # type: ignore[arg-type]


# --- proxy= ------------------------------------------------------------------------------


async def test_proxy_argument_routes_every_request_through_the_proxy() -> None:
    """With ``proxy=``, the request goes to the proxy, which forwards it to the API."""
    origin = Origin()
    async with (
        origin.running() as base,
        forward_proxy() as proxy,
        client_for(base, proxy=proxy.url) as client,
    ):
        team = await client.team.get()
    assert team.name == "Proxied"
    assert [(s.method, s.target) for s in proxy.seen] == [("GET", f"{base}/v1/team")]
    assert origin.seen[0]["X-Api-Key"] == KEY


async def test_proxy_credentials_go_to_the_proxy_only() -> None:
    """Credentials in the proxy URL reach the proxy as ``Proxy-Authorization``, never
    the API, and never appear in a repr."""
    origin = Origin()
    async with (
        origin.running() as base,
        forward_proxy(credentials=("corp", "s3cret/pw")) as proxy,
    ):
        url = proxy.url.replace("http://", "http://corp:s3cret%2Fpw@")
        async with client_for(base, proxy=url) as client:
            await client.team.get()
            assert "s3cret" not in repr(client)
            assert "s3cret" not in repr(client._transport)
    assert proxy.seen[0].headers["Proxy-Authorization"].startswith("Basic ")
    assert not any(name.lower() == "proxy-authorization" for name in origin.seen[0])


async def test_refused_proxy_credentials_never_show_in_the_error() -> None:
    """A proxy refusing the credentials (407) is an error that does not echo them."""
    origin = Origin()
    async with origin.running() as base, forward_proxy(credentials=("corp", "right")) as proxy:
        url = proxy.url.replace("http://", "http://corp:wr0ngpass@")
        async with client_for(base, proxy=url) as client:
            with pytest.raises(BadRequestError) as info:
                await client.team.get()
    assert info.value.status == 407
    assert "wr0ngpass" not in str(info.value)
    assert "wr0ngpass" not in repr(info.value)
    assert origin.seen == []


async def test_an_unreachable_proxy_is_a_connection_error_without_its_password() -> None:
    """A proxy that refuses connections gives ``APIConnectionError``; the password stays out."""
    async with forward_proxy() as proxy:
        dead = proxy.url.replace("http://", "http://user:hunter2pw@")
    async with client_for("http://127.0.0.1:9", proxy=dead) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.team.get()
    assert "hunter2pw" not in str(info.value)


@pytest.mark.parametrize(
    ("proxy", "error"),
    [
        (3128, TypeError),
        ("socks5://user:topsecret@127.0.0.1:1080", ValueError),
        ("127.0.0.1:3128", ValueError),
        ("http://user:topsecret@", ValueError),
    ],
)
async def test_a_bad_proxy_value_is_refused_at_construction(
    proxy: object, error: type[Exception]
) -> None:
    """A proxy that is not an http(s) URL fails when the client is made, without echoing it."""
    with pytest.raises(error) as info:
        client_for("http://127.0.0.1:9", proxy=proxy)
    assert "topsecret" not in str(info.value)


# --- the environment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "options", "proxied"),
    [
        pytest.param({"HTTP_PROXY": "{proxy}"}, {}, True, id="http_proxy-routes-http"),
        pytest.param(
            {"HTTP_PROXY": "{proxy}", "NO_PROXY": "localhost,127.0.0.1"},
            {},
            False,
            id="no_proxy-host-goes-direct",
        ),
        pytest.param({"HTTP_PROXY": "{host_port}"}, {}, True, id="bare-host-port-means-http"),
        pytest.param(
            {"HTTP_PROXY": "socks5://127.0.0.1:9"}, {}, False, id="unsupported-socks5-ignored"
        ),
        pytest.param(
            {"HTTP_PROXY": "{proxy}"}, {"trust_env": False}, False, id="trust_env-false-ignores"
        ),
    ],
)
async def test_environment_proxies(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    options: dict[str, object],
    proxied: bool,
) -> None:
    """``HTTP_PROXY`` (``host:port`` read as ``http://``) routes plain-HTTP requests through
    that proxy, unless ``NO_PROXY`` lists the host, the scheme is one aiohttp cannot use
    (``socks5://``), or ``trust_env=False``: then requests go direct."""
    origin = Origin()
    async with origin.running() as base, forward_proxy() as proxy:
        for name, value in environment.items():
            host_port = proxy.url.removeprefix("http://")
            monkeypatch.setenv(name, value.format(proxy=proxy.url, host_port=host_port))
        async with client_for(base, **options) as client:
            await client.team.get()
    assert [s.target for s in proxy.seen] == ([f"{base}/v1/team"] if proxied else [])
    assert len(origin.seen) == 1


async def test_proxy_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit ``proxy=`` is used even when the environment names another proxy."""
    origin = Origin()
    async with origin.running() as base, forward_proxy() as chosen, forward_proxy() as env:
        monkeypatch.setenv("HTTP_PROXY", env.url)
        async with client_for(base, proxy=chosen.url) as client:
            await client.team.get()
    assert len(chosen.seen) == 1
    assert env.seen == []


# --- where the API key may go ------------------------------------------------------------


async def test_a_redirect_to_another_port_does_not_carry_the_key() -> None:
    """The key reaches the API's origin only: a redirect to another loopback port
    (another origin) is followed without ``X-Api-Key`` or ``Authorization``."""
    other = Origin()
    async with other.running() as elsewhere:

        async def moved(request: web.Request) -> web.StreamResponse:
            raise web.HTTPTemporaryRedirect(elsewhere + "/v1/team")

        async with serve([("GET", "/v1/team", moved)]) as api, client_for(api) as client:
            team = await client.team.get()
    assert team.name == "Proxied"
    headers = {name.lower(): value for name, value in other.seen[0].items()}
    assert "x-api-key" not in headers
    assert "authorization" not in headers
    assert KEY not in str(headers)


async def test_an_absolute_url_on_another_origin_gets_no_key() -> None:
    """A call to an absolute URL (an output URL a response named) carries the key only
    when it is on the API's origin."""
    other = Origin()
    async with (
        other.running() as elsewhere,
        other.running() as api,
        client_for(api) as client,
    ):
        for url in (elsewhere + "/v1/team", api + "/v1/team"):
            call = Call(method="GET", path=url, route="/v1/team", idempotent=True)
            await client._requester.send(call)
    assert [seen.get("X-Api-Key") for seen in other.seen] == [None, KEY]


# --- ssl= --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", 1, None, ssl.PROTOCOL_TLS_CLIENT])
async def test_a_bad_ssl_value_is_a_type_error_before_any_request(value: object) -> None:
    """``ssl`` must be an ``SSLContext``, ``True`` or ``False``: anything else fails at once."""
    with pytest.raises(TypeError, match="ssl must be"):
        client_for("http://127.0.0.1:9", ssl=value)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key (made by openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


async def test_default_verification_refuses_a_self_signed_server(
    server_tls: ssl.SSLContext,
) -> None:
    """Without ``ssl=``, a certificate no trusted CA signed is a connection error."""
    origin = Origin()
    async with origin.running(server_tls) as base, client_for(base) as client:
        with pytest.raises(APIConnectionError, match=r"(?i)certificate"):
            await client.team.get()
    assert origin.seen == []


async def test_an_ssl_context_with_the_servers_ca_is_trusted(
    server_tls: ssl.SSLContext, certificate: tuple[Path, Path]
) -> None:
    """``ssl=`` with a context trusting the server's certificate connects over TLS."""
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    origin = Origin()
    async with origin.running(server_tls) as base, client_for(base, ssl=trusting) as client:
        assert (await client.team.get()).name == "Proxied"


async def test_ssl_false_skips_verification(server_tls: ssl.SSLContext) -> None:
    """``ssl=False`` accepts a self-signed local test server."""
    origin = Origin()
    async with origin.running(server_tls) as base, client_for(base, ssl=False) as client:
        assert (await client.team.get()).name == "Proxied"


async def test_https_through_a_proxy_is_tunnelled_with_connect(
    server_tls: ssl.SSLContext, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https API behind ``HTTPS_PROXY`` is reached through a ``CONNECT`` tunnel: the
    proxy sees only the host and its credentials, the API sees no proxy credentials."""
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    origin = Origin()
    async with (
        origin.running(server_tls) as base,
        forward_proxy(credentials=("corp", "tunnelpw")) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://corp:tunnelpw@"))
        async with client_for(base, ssl=trusting) as client:
            await client.team.get()
    host = base.removeprefix("https://")
    assert [(s.method, s.target) for s in proxy.seen] == [("CONNECT", host)]
    assert "X-Api-Key" not in proxy.seen[0].headers
    assert origin.seen[0]["X-Api-Key"] == KEY
    assert not any(name.lower() == "proxy-authorization" for name in origin.seen[0])
