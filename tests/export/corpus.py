"""Seeded corpora for redaction tests: planted PII and secrets, and clean support-agent text.

Every planted value is valid by construction (Luhn for cards, ISO 13616 check
digits for IBANs, decodable JWT headers), so a detector that validates must find it.
"""

from __future__ import annotations

import base64
import random
import string

import orjson

ALNUM = string.ascii_letters + string.digits


def luhn_complete(prefix_digits: str, length: int, rng: random.Random) -> str:
    body = prefix_digits + "".join(rng.choice(string.digits) for _ in range(length - len(prefix_digits) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
         ("6011", 16), ("65", 16), ("3530", 16), ("36", 14)]
    )  # fmt: skip
    digits = luhn_complete(prefix, length, rng)
    style = rng.choice(["plain", "space", "dash"])
    if style == "plain":
        return digits
    sep = " " if style == "space" else "-"
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, length, 4))


_IBAN_FORMATS = {  # country: BBAN character classes (n: digit, a: upper letter, c: alnum)
    "DE": "n" * 18, "GB": "aaaa" + "n" * 14, "FR": "n" * 10 + "c" * 11 + "nn", "NL": "aaaa" + "n" * 10,
    "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12, "BE": "n" * 12, "CH": "n" * 5 + "c" * 12,
}  # fmt: skip


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_FORMATS))
    pools = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
    bban = "".join(rng.choice(pools[k]) for k in _IBAN_FORMATS[country])
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(numeric) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    header = _b64(orjson.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}))
    payload = _b64(orjson.dumps({"sub": str(rng.randrange(10**9)), "name": "x", "iat": rng.randrange(10**9)}))
    return f"{header}.{payload}.{''.join(rng.choice(ALNUM + '-_') for _ in range(43))}"


def api_key(rng: random.Random) -> str:
    def r(n: int, alphabet: str = ALNUM) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    return rng.choice(
        [
            "sk-" + r(48),
            "sk-proj-" + r(56, ALNUM + "_-"),
            "sk-ant-" + r(40, ALNUM + "_-"),
            "AKIA" + r(16, string.ascii_uppercase + string.digits),
            "ghp_" + r(36),
            "github_pat_" + r(30, ALNUM + "_"),
            "xoxb-" + r(10, string.digits) + "-" + r(24),
            "AIza" + r(35, ALNUM + "_-"),
            "sk_live_" + r(24),
            "glpat-" + r(20),
        ]
    )


def email(rng: random.Random) -> str:
    first = rng.choice(["ana", "li", "joão", "mike", "dana", "o.brien", "x"]).replace("ã", "a")
    last = rng.choice(["smith", "kowalski", "ng", "garcia", "lee"])
    sep = rng.choice([".", "_", "", "+tag."])
    domain = rng.choice(["example.com", "mail.co.uk", "corp.example.org", "gmail.com", "sub.domain.io"])
    return f"{first}{sep}{last}{rng.randrange(100)}@{domain}"


def phone(rng: random.Random) -> str:
    a, b, c = rng.randrange(200, 999), rng.randrange(200, 999), rng.randrange(10000)
    return rng.choice(
        [
            f"({a}) {b}-{c:04d}",
            f"{a}-{b}-{c:04d}",
            f"{a}.{b}.{c:04d}",
            f"+1 {a} {b} {c:04d}",
            f"+1-{a}-{b}-{c:04d}",
            f"+1{a}{b}{c:04d}",
            f"+44 20 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
            f"+49 30 {rng.randrange(10**7, 10**8)}",
            f"+33 1 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}",
            f"020 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
        ]
    )


def ipv4(rng: random.Random) -> str:
    return ".".join(str(rng.randrange(1, 255)) for _ in range(4))


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randrange(0x10000):x}" for _ in range(8)]
    if rng.random() < 0.5:
        groups[0] = "2001"
        return ":".join(groups)
    return f"2001:db8::{groups[6]}:{rng.randrange(1, 0xFFFF):x}"


def secret_assignment(rng: random.Random) -> tuple[str, str]:
    value = "".join(rng.choice(ALNUM) for _ in range(20)) + str(rng.randrange(10))
    keyword = rng.choice(
        ["api_key", "API_KEY", "secret", "client_secret", "access_token", "password", "auth_token"]
    )
    separator = rng.choice(["=", ": ", '": "', "="])
    return f"{keyword}{separator}{value}", value


def bearer(rng: random.Random) -> tuple[str, str]:
    token = "".join(rng.choice(ALNUM + "._-") for _ in range(32))
    return f"Authorization: Bearer {token}", token


def url_password(rng: random.Random) -> tuple[str, str]:
    password = "".join(rng.choice(ALNUM) for _ in range(12))
    return f"postgres://admin:{password}@db.internal:5432/prod", password


def private_key(rng: random.Random) -> str:
    body = "\n".join("".join(rng.choice(ALNUM + "+/") for _ in range(64)) for _ in range(4))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


TEMPLATES = (
    "Hi, my details: {v}. Thanks!",
    "please use {v}, not the old one",
    "Contact ({v}) asap",
    '{{"value": "{v}", "ok": true}}',
    "line one\n{v}\nline three",
    "value={v};next",
    "{v}",
    "Customer wrote: \u00abcall {v}\u00bb ok?",
)


def planted_corpus(seed: int = 7, per_kind: int = 60) -> list[tuple[str, str, str]]:
    """``(kind, secret value, text containing it)`` for every kind, ``per_kind`` each."""
    rng = random.Random(seed)
    makers = {
        "CARD": card, "IBAN": iban, "JWT": jwt, "API_KEY": api_key, "EMAIL": email, "PHONE": phone,
        "IP4": ipv4, "IP6": ipv6, "PRIVATE_KEY": private_key,
    }  # fmt: skip
    out = []
    for kind, make in makers.items():
        for _ in range(per_kind):
            value = make(rng)
            out.append((kind, value, rng.choice(TEMPLATES).format(v=value)))
    for kind, make in {"SECRET": secret_assignment, "TOKEN": bearer, "PASSWORD": url_password}.items():
        for _ in range(per_kind):
            text, value = make(rng)
            out.append((kind, value, rng.choice(TEMPLATES).format(v=text)))
    return out


def clean_corpus(seed: int = 11, n: int = 2000) -> list[str]:
    """Support-agent text full of numbers that are NOT personal data or secrets."""
    rng = random.Random(seed)
    products = ["AeroBlend 3000 blender", "KettlePro 2", "Model X-200 vacuum", "iPhone 15 case", "4K TV 55in"]
    templates = [
        "Your order #{order} shipped on {date} and arrives in 8-12 business days.",
        "Tracking number 1Z{track} was updated at {time}.",
        "The {product} costs ${price} (was ${price2}), a {pct}% discount.",
        "We refunded ${price} to your card ending in {last4} on {date}.",
        "Version {ver} fixed the login bug; please update from {ver2}.",
        "Your ticket {ticket} was escalated at {time} on {date}.",
        "Password reset: click the link we sent. The token count was {n} tokens.",
        "Order {order} contains {n} x {product} at {price} each.",
        "ISBN 978-3-16-{isbn}-0, batch {batch}, SKU AB-{n}-{n2}.",
        "Meeting at {time} UTC, room {n}, floor {pct}.",
        "The warranty is {n} years; serial SN{serial}.",
        "Invoice INV-{order} total \u20ac{price} due {date}, reference {ticket}.",
        "Order id {uuid} was created at {stamp}.",
        "Call volume was {big} this quarter, up {pct}% from {big2}.",
        "Secret Santa gift limit is ${price}; password: see the HR portal.",
        "Use coupon SAVE{pct} at checkout before {date}.",
    ]
    out = []
    for _ in range(n):
        t = rng.choice(templates)
        out.append(
            t.format(
                order=rng.randrange(10**5, 10**8),
                date=f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                track="".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
                time=f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
                product=rng.choice(products),
                price=f"{rng.randrange(5, 2000)}.{rng.randrange(100):02d}",
                price2=f"{rng.randrange(5, 2000)}.99",
                pct=rng.randrange(1, 80),
                last4=f"{rng.randrange(10000):04d}",
                ver=f"{rng.randrange(1, 9)}.{rng.randrange(20)}.{rng.randrange(20)}",
                ver2=f"v{rng.randrange(1, 9)}.{rng.randrange(20)}",
                ticket=f"T-{rng.randrange(10**6)}",
                n=rng.randrange(1, 500),
                n2=rng.randrange(1, 500),
                isbn=rng.randrange(100000, 999999),
                batch=rng.randrange(10**3, 10**6),
                serial=rng.randrange(10**9, 10**10),
                uuid=f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}",
                stamp=f"2024-03-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
                big=f"{rng.randrange(1, 999)},{rng.randrange(1000):03d},{rng.randrange(1000):03d}",
                big2=f"{rng.randrange(1, 999)},{rng.randrange(1000):03d}",
            )
        )
    return out
