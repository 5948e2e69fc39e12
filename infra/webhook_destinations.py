"""Where a webhook may be sent: the guard against server-side request forgery (SSRF).

An admin names a URL and stagegate's own network position makes the request, so a URL
pointing inwards (the cloud metadata service, a database's HTTP port, an internal admin page)
would let a subscription reach what only the server can reach. A URL is therefore judged when
it is subscribed and again before every delivery, since a name can be made to resolve
elsewhere at any time:

- the scheme is ``https``, or ``http`` when ``STAGEGATE_WEBHOOK_ALLOW_HTTP`` allows it;
- the host is resolved, and **every** address it resolves to must be public: a name resolving
  to one public and one private address is refused, since the connection may use either;
- an IPv4 address written inside IPv6 (``::ffff:10.0.0.5``, NAT64's ``64:ff9b::10.0.0.5``)
  is judged as the IPv4 address it reaches;
- an address inside one of ``STAGEGATE_WEBHOOK_ALLOWED_NETWORKS`` (CIDRs) is allowed whatever
  its kind: the administrator's way to reach an internal receiver, and the tests' loopback one.

The delivery then connects to an address it has just judged (``post``), with the URL's name
in the ``Host`` header and as TLS server name (so the certificate is still verified against
the name), rather than letting the HTTP client resolve the name again: a name whose answer
changes between the check and the connection (DNS rebinding) cannot move the request
inwards. Redirects are never followed, so a receiver cannot bounce a request to another host.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

import httpx

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Sequence[IPAddress]]
"""Every address a host name resolves to, for a TCP connection to ``port``."""

ALLOW_HTTP_SETTING = "STAGEGATE_WEBHOOK_ALLOW_HTTP"
ALLOWED_NETWORKS_SETTING = "STAGEGATE_WEBHOOK_ALLOWED_NETWORKS"

CLOUD_METADATA = {
    ip_address("169.254.169.254"),  # AWS, Azure, GCP (metadata.google.internal), OpenStack
    ip_address("169.254.170.2"),  # AWS ECS task metadata and credentials
    ip_address("fd00:ec2::254"),  # AWS on IPv6
    ip_address("100.100.100.200"),  # Alibaba Cloud
}
"""Addresses of cloud instance metadata services: named as such, being the classic target."""
PRIVATE_IPV4 = tuple(ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
"""RFC 1918."""
CARRIER_GRADE_NAT = ip_network("100.64.0.0/10")
"""RFC 6598: shared address space, inside a provider's network."""
UNIQUE_LOCAL = ip_network("fc00::/7")
NAT64 = ip_network("64:ff9b::/96")
"""RFC 6052's well-known prefix: the last 32 bits are the IPv4 address a NAT64 gateway reaches."""


class DestinationRefused(Exception):
    """A URL stagegate will not send to; the message says why and what setting would allow it.

    Not retried: the same URL is judged the same way until a setting or its DNS changes."""


class HostUnresolvable(Exception):
    """The URL's host name does not resolve now (retried at delivery, like a refused
    connection; refused at subscription)."""


def resolve_addresses(host: str, port: int) -> list[IPAddress]:
    """The system resolver's addresses for ``host``, in its order of preference, once each."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise HostUnresolvable(f"{host} does not resolve ({error})") from error
    addresses: list[IPAddress] = []
    for info in infos:
        # An IPv6 link-local answer may carry a zone ("fe80::1%eth0"): judged without it.
        address = ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for when it embeds one (IPv4-mapped, NAT64)."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("a private address (RFC 1918)"), or None
    when it is a public one a webhook may be sent to."""
    address = unwrapped(address)
    if address in CLOUD_METADATA:
        return "a cloud metadata service address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, IPv4Address):
        if any(address in network for network in PRIVATE_IPV4):
            return "a private address (RFC 1918)"
        if address in CARRIER_GRADE_NAT:
            return "a carrier-grade NAT address (100.64.0.0/10)"
    elif address in UNIQUE_LOCAL:
        return "a unique-local address (fc00::/7)"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose address, not a public one"
    return None


def _within(address: IPAddress, networks: Sequence[Network]) -> bool:
    # ``in`` across IP versions compares bare integers (``::1 in 0.0.0.0/0`` is True), so
    # each network is matched against an address of its own version only.
    candidates = {address, unwrapped(address)}
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in networks
    )


@dataclass(frozen=True)
class Destination:
    """A URL as judged: the addresses its host had when checked, each allowed."""

    url: str
    scheme: str
    host: str
    """The name as written (IPv6 literals without brackets)."""
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def host_is_name(self) -> bool:
        try:
            ip_address(self.host)
        except ValueError:
            return True
        return False

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_to(self, address: IPAddress) -> str:
        """The URL with ``address`` in place of its host: what is connected to."""
        parts = urlsplit(self.url)
        literal = f"[{address}]" if address.version == 6 else str(address)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return parts._replace(netloc=f"{netloc}{literal}:{self.port}").geturl()


@dataclass(frozen=True)
class DestinationPolicy:
    """The administrator's settings on where webhooks may go, and how names are resolved."""

    allow_http: bool = False
    allowed_networks: tuple[Network, ...] = ()
    resolve: Resolver = resolve_addresses

    def check(self, url: str) -> Destination:
        """``url`` judged now; raises ``DestinationRefused`` or ``HostUnresolvable``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise DestinationRefused(f"the scheme '{scheme}' is not https")
        if scheme == "http" and not self.allow_http:
            raise DestinationRefused(
                f"plain http is refused: use https, or set {ALLOW_HTTP_SETTING}=true"
            )
        host = parts.hostname
        if not host:
            raise DestinationRefused("the URL names no host")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as error:
            raise DestinationRefused(f"the port is not valid ({error})") from error
        try:
            addresses: Sequence[IPAddress] = [ip_address(host)]
            written = True
        except ValueError:
            addresses = self.resolve(host, port)
            written = False
        if not addresses:
            raise HostUnresolvable(f"{host} resolves to no address")
        for address in addresses:
            kind = non_public_kind(address)
            if kind is None or _within(address, self.allowed_networks):
                continue
            judged = unwrapped(address)
            shown = host if written else str(address)  # a literal as the admin wrote it
            if judged != address:
                shown += f" (that is {judged})"
            where = f"{shown} is" if written else f"{host} resolves to {shown},"
            raise DestinationRefused(
                f"{where} {kind}; to allow it, add a network holding it to"
                f" {ALLOWED_NETWORKS_SETTING}"
            )
        return Destination(url, scheme, host, port, tuple(addresses))


def post(
    destination: Destination,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    verify: bool | ssl.SSLContext = True,
) -> int:
    """POST ``body`` to a judged destination, connecting to its checked addresses (in order,
    the next on a failed connection) and to nothing else; the answer's status.

    ``verify``: as httpx takes it (the tests' own certificate authority, in tests)."""
    sent_headers = {**headers, "Host": destination.host_header}
    extensions = {}
    if destination.scheme == "https" and destination.host_is_name:
        # TLS speaks to the name: the server picks its certificate by it, and the
        # certificate is verified against it, not against the address connected to.
        extensions["sni_hostname"] = destination.host
    failure: httpx.ConnectError | None = None
    with httpx.Client(timeout=timeout, follow_redirects=False, verify=verify) as client:
        for address in destination.addresses:
            try:
                response = client.post(
                    destination.url_to(address),
                    content=body,
                    headers=sent_headers,
                    extensions=extensions,
                )
            except httpx.ConnectError as error:
                failure = error
                continue
            return response.status_code
    assert failure is not None  # a destination has at least one address
    raise failure
