"""The SSRF guard: which webhook URLs are refused, and that a delivery connects only to an
address it judged (issue 12, item 8).

Nothing here leaves the machine: addresses are IP literals, judged without being contacted;
names are resolved by a resolver the test supplies (never the system's), and the only
requests made go to servers on 127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from typing import Any

import httpx
import pytest
import trustme

from infra.webhook_destinations import (
    ALLOW_HTTP_SETTING,
    ALLOWED_NETWORKS_SETTING,
    DestinationPolicy,
    DestinationRefused,
    HostUnresolvable,
    IPAddress,
    post,
)

LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
PUBLIC = "93.184.215.14"
"""A public address: judged, never contacted."""


def resolver(table: dict[str, Sequence[str]]) -> Any:
    """A resolver answering from ``table`` alone; a name it lacks does not resolve."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        if host not in table:
            raise HostUnresolvable(f"{host} does not resolve (test resolver)")
        return [ip_address(a) for a in table[host]]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def refusal(policy: DestinationPolicy, url: str) -> str:
    with pytest.raises(DestinationRefused) as refused:
        policy.check(url)
    return str(refused.value)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.5", "a private address (RFC 1918)"),
        ("172.16.3.4", "a private address (RFC 1918)"),
        ("192.168.1.1", "a private address (RFC 1918)"),
        ("127.0.0.1", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("169.254.169.254", "a cloud metadata service address"),
        ("169.254.10.10", "a link-local address"),
        ("[fe80::1]", "a link-local address"),
        ("[fd00:ec2::254]", "a cloud metadata service address"),
        ("[fd12:3456::1]", "a unique-local address (fc00::/7)"),
        ("100.64.0.1", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("0.0.0.0", "an unspecified address"),
        ("[::]", "an unspecified address"),
        ("224.0.0.251", "a multicast address"),
        ("[ff02::1]", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.2.10", "a special-purpose address, not a public one"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 (that is 127.0.0.1) is a loopback address"),
        ("[::ffff:10.0.0.5]", "(that is 10.0.0.5) is a private address (RFC 1918)"),
        ("[64:ff9b::a9fe:a9fe]", "(that is 169.254.169.254) is a cloud metadata service"),
    ],
)
def test_a_non_public_address_is_refused_naming_what_it_is_and_the_setting(
    address: str, kind: str
) -> None:
    message = refusal(DestinationPolicy(), f"https://{address}:8443/hook")
    assert kind in message
    assert ALLOWED_NETWORKS_SETTING in message


def test_public_addresses_pass() -> None:
    policy = DestinationPolicy()
    for url in (f"https://{PUBLIC}/hook", "https://[2606:4700:4700::1111]/hook"):
        destination = policy.check(url)
        assert [str(a) for a in destination.addresses] == [url.split("/")[2].strip("[]")]


def test_every_address_a_name_resolves_to_must_pass() -> None:
    policy = DestinationPolicy(
        resolve=resolver({"mixed.example": [PUBLIC, "10.0.0.5"], "public.example": [PUBLIC]})
    )
    assert policy.check("https://public.example/hook").addresses == (ip_address(PUBLIC),)
    message = refusal(policy, "https://mixed.example/hook")
    assert message.startswith("mixed.example resolves to 10.0.0.5, a private address (RFC 1918)")


def test_a_metadata_name_is_refused_by_where_it_resolves() -> None:
    policy = DestinationPolicy(resolve=resolver({"metadata.google.internal": ["169.254.169.254"]}))
    message = refusal(policy, "https://metadata.google.internal/computeMetadata/v1/")
    assert "resolves to 169.254.169.254, a cloud metadata service address" in message


def test_a_name_that_does_not_resolve_is_unresolvable_not_refused() -> None:
    with pytest.raises(HostUnresolvable, match=r"nowhere\.invalid does not resolve"):
        DestinationPolicy(resolve=resolver({})).check("https://nowhere.invalid/hook")


def test_plain_http_needs_the_setting() -> None:
    message = refusal(DestinationPolicy(), f"http://{PUBLIC}/hook")
    assert message == f"plain http is refused: use https, or set {ALLOW_HTTP_SETTING}=true"
    assert DestinationPolicy(allow_http=True).check(f"http://{PUBLIC}/hook").scheme == "http"
    assert "'ftp' is not https" in refusal(DestinationPolicy(allow_http=True), "ftp://x/y")


def test_allowed_networks_admit_what_they_hold_and_nothing_else() -> None:
    policy = DestinationPolicy(allowed_networks=(ip_network("10.20.0.0/16"), *LOOPBACK))
    for url in (
        "https://10.20.3.4/hook",
        "https://127.0.0.1:9/hook",
        "https://[::1]:9/hook",
        "https://[::ffff:127.0.0.1]:9/hook",  # judged as the IPv4 address it is
    ):
        policy.check(url)
    assert "10.21.0.1 is a private address" in refusal(policy, "https://10.21.0.1/hook")
    assert "cloud metadata" in refusal(policy, "https://169.254.169.254/")


def test_a_network_of_one_ip_version_admits_no_address_of_the_other() -> None:
    # ipaddress compares bare integers across versions: ::1 "is in" 0.0.0.0/0.
    everything_v4 = DestinationPolicy(allowed_networks=(ip_network("0.0.0.0/0"),))
    assert "::1 is a loopback address" in refusal(everything_v4, "https://[::1]/hook")
    only_v6 = DestinationPolicy(allowed_networks=(ip_network("::/0"),))
    assert "10.0.0.5 is a private address" in refusal(only_v6, "https://10.0.0.5/hook")


# --- sending: to the checked address only, no redirect followed -----------------------------


@dataclass
class Heard:
    path: str
    host: str
    body: bytes


@dataclass
class Receiver:
    port: int = 0
    answer: int = 204
    location: str = ""
    heard: list[Heard] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.heard.append(Heard(self.path, self.headers.get("Host", ""), body))
        self.send_response(receiver.answer)
        if receiver.location:
            self.send_header("Location", receiver.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(port=server.server_address[1])
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: server.receiver.server_names.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve()


def test_the_request_goes_to_the_address_judged_with_the_name_as_host(
    receiver: Receiver,
) -> None:
    # A .invalid name (RFC 6761) never resolves anywhere: only the judged address can be
    # what the request reached, the system resolver is never asked.
    resolve = resolver({"receiver.invalid": ["127.0.0.1"]})
    policy = DestinationPolicy(allow_http=True, allowed_networks=LOOPBACK, resolve=resolve)
    destination = policy.check(f"http://receiver.invalid:{receiver.port}/hooks/a?x=1")

    assert post(destination, b"{}", {"Content-Type": "application/json"}, 5) == 204
    [heard] = receiver.heard
    assert (heard.path, heard.host, heard.body) == (
        "/hooks/a?x=1",
        f"receiver.invalid:{receiver.port}",
        b"{}",
    )
    assert resolve.asked == ["receiver.invalid"]  # resolved once: when judged


def socket_port_nobody_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_next_checked_address_is_tried_when_one_does_not_connect(
    receiver: Receiver,
) -> None:
    closed = socket_port_nobody_listens_on()
    resolve = resolver({"two.invalid": ["127.0.0.2", "127.0.0.1"]})
    policy = DestinationPolicy(allow_http=True, allowed_networks=LOOPBACK, resolve=resolve)
    # 127.0.0.2 refuses on the receiver's port (it listens on 127.0.0.1 only).
    destination = policy.check(f"http://two.invalid:{receiver.port}/hook")
    assert post(destination, b"{}", {}, 5) == 204
    assert len(receiver.heard) == 1
    nobody = policy.check(f"http://127.0.0.1:{closed}/hook")
    with pytest.raises(httpx.ConnectError):
        post(nobody, b"{}", {}, 5)


def test_a_redirect_is_answered_not_followed(receiver: Receiver) -> None:
    receiver.answer, receiver.location = 307, "http://169.254.169.254/latest/meta-data/"
    policy = DestinationPolicy(allow_http=True, allowed_networks=LOOPBACK)
    assert post(policy.check(f"http://127.0.0.1:{receiver.port}/hook"), b"{}", {}, 5) == 307
    assert len(receiver.heard) == 1


def test_tls_speaks_to_the_name_and_verifies_the_certificate_against_it() -> None:
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("receiver.test").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    resolve = resolver({"receiver.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
    policy = DestinationPolicy(allowed_networks=LOOPBACK, resolve=resolve)
    for receiver in _serve(server_tls):
        genuine = policy.check(f"https://receiver.test:{receiver.port}/hook")
        assert post(genuine, b"{}", {}, 5, verify=client_tls) == 204
        assert receiver.server_names == ["receiver.test"]
        assert receiver.heard[0].host == f"receiver.test:{receiver.port}"

        # The same address under a name its certificate does not carry: refused by TLS.
        impostor = policy.check(f"https://impostor.test:{receiver.port}/hook")
        with pytest.raises(httpx.ConnectError, match="certificate"):
            post(impostor, b"{}", {}, 5, verify=client_tls)
        assert len(receiver.heard) == 1
