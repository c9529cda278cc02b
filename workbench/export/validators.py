"""Validators for PII candidates: checksums and shape checks that cut false positives.

Examples
--------
>>> luhn_valid("4111111111111111"), iban_valid("GB82 WEST 1234 5698 7654 32"), ip_valid("10.0.0.300")
(True, True, False)
"""

from __future__ import annotations

import base64
import ipaddress
import math
import re
from collections import Counter

# IBAN lengths per country (ISO 13616 registry, SWIFT release 2024).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (True for valid card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    n = len(digits)
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= int(digits[:6]) <= 622925:
        return 16 <= n <= 19
    if p2 == 35:
        return 16 <= n <= 19
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if p2 in (50, 56, 57, 58, 62, 63, 67, 69):
        return 12 <= n <= 19
    return False


def card_valid(text: str) -> bool:
    """A plausible payment card number: 13-19 digits, known issuer prefix, Luhn valid."""
    digits = re.sub(r"[ -]", "", text)
    return digits.isdigit() and 13 <= len(digits) <= 19 and _card_prefix_ok(digits) and luhn_valid(digits)


def iban_valid(text: str) -> bool:
    """ISO 13616 check: known country, its length, and mod-97 == 1."""
    compact = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _iban_prefix(text: str) -> str | None:
    """The leading substring of ``text`` that is a valid IBAN of its country's length."""
    length = IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    seen = 0
    for end, ch in enumerate(text, start=1):
        if ch != " ":
            seen += 1
        if seen == length:
            piece = text[:end]
            return piece if iban_valid(piece) else None
    return None


def ip_valid(text: str) -> bool:
    """A valid IPv4 address, or an IPv6 address with 2+ groups and a digit."""
    if "." in text and ":" not in text:
        parts = text.split(".")
        return len(parts) == 4 and all(
            p.isdigit() and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts
        )
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.version == 6:
        groups = [g for g in text.split(":") if g]
        return len(groups) >= 2 and any(ch.isdigit() for ch in text)
    return True


def phone_valid(text: str) -> bool:
    """9 to 15 digits (E.164 allows at most 15)."""
    digits = sum(ch.isdigit() for ch in text)
    return 9 <= digits <= 15


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _jwt_valid(text: str) -> bool:
    head = text.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except ValueError:
        return False
    return decoded.lstrip().startswith(b"{")
