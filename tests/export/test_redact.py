"""Redaction: recall on a seeded corpus, false positives on clean text, placeholders, failures (P1, P3, P4, P5)."""

from __future__ import annotations

import re
import socket

import orjson
import polars as pl
import pytest

from tests.export.corpus import clean_corpus, planted_corpus
from workbench.export.detectors import DenyListDetector, Finding, PatternDetector, PresidioDetector
from workbench.export.items import MESSAGE
from workbench.export.redact import PLACEHOLDER_PATTERN, RedactionError, redact_frame
from workbench.export.validators import card_valid, iban_valid, luhn_valid

KIND_OF = {"IP4": "IP", "IP6": "IP"}


def test_recall_is_complete_on_seeded_corpus():
    corpus = planted_corpus(seed=7, per_kind=60)
    frame = pl.DataFrame({"text": [text for _k, _v, text in corpus]})
    clean, report = redact_frame(frame, text_columns=["text"])
    missed = [(kind, value) for (kind, value, _t), out in zip(corpus, clean["text"].to_list(), strict=True)
              if value in out]  # fmt: skip
    assert missed == []
    for (kind, _value, _text), out in zip(corpus, clean["text"].to_list(), strict=True):
        expected = KIND_OF.get(kind, kind)
        kinds = set(re.findall(PLACEHOLDER_PATTERN, out))
        if kind == "SECRET":  # a password= assignment is reported as PASSWORD
            assert kinds & {"SECRET", "PASSWORD"}, out
        else:
            assert expected in kinds, (kind, out)
    assert report.ner == "not run"
    assert sum(report.counts.values()) >= len(corpus)


def test_false_positive_rate_on_clean_text_is_low():
    texts = clean_corpus(seed=11, n=2000)
    clean, report = redact_frame(pl.DataFrame({"text": texts}), text_columns=["text"])
    changed = sum(a != b for a, b in zip(texts, clean["text"].to_list(), strict=True))
    rate = changed / len(texts)
    print(f"false-positive rate on {len(texts)} clean texts: {rate:.2%} ({report.counts})")
    assert rate <= 0.01


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("4111 1111 1111 1111 2024", "CARD"),  # a valid card followed by a year
        ("the IBAN DE89370400440532013000XX", "IBAN"),  # valid IBAN glued to more letters
        ("postgres://admin:s3cretPw@db:5432/x", "PASSWORD"),
        ("Authorization: Bearer abcdefghijklmnop1234", "TOKEN"),
        ("fe80::1ff:fe23:4567:890a", "IP"),
    ],
)
def test_tricky_contexts(text, kind):
    assert kind in {f.kind for f in PatternDetector().find(pl.Series([text]))}


@pytest.mark.parametrize(
    "text",
    ["12:30:45", "std::vector<int>", "version 1.2.3", "order 1234567812345678", "2024-01-15", "password: changed",
     "MAC 00:1A:2B:3C:4D:5E", "tokens: 1532", "ISBN 978-3-16-148410-0"],
)  # fmt: skip
def test_lookalikes_are_not_redacted(text):
    assert PatternDetector().find(pl.Series([text])) == []


def test_validators():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert card_valid("4111-1111-1111-1111") and not card_valid("1234 5678 9012 3456")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_consistent_placeholders_across_columns_and_rows():
    frame = pl.DataFrame(
        {
            "input": ["mail ann@x.io", "bob@y.org and ann@x.io", None],
            "note": ["ann@x.io again", "call +1 415-555-0100", "ann@x.io"],
        }
    )
    clean, report = redact_frame(frame, text_columns=["input", "note"])
    assert clean["input"].to_list() == ["mail <EMAIL_1>", "<EMAIL_2> and <EMAIL_1>", None]
    assert clean["note"].to_list() == ["<EMAIL_1> again", "call <PHONE_1>", "<EMAIL_1>"]
    assert report.counts == {"EMAIL": 5, "PHONE": 1}
    assert report.distinct == {"EMAIL": 2, "PHONE": 1}


def test_json_and_message_columns_and_field_rules():
    meta = [
        orjson.dumps({"customer": {"email": "c1@x.io", "tier": "gold", "crm_id": "CRM-99182"}, "note": "x\n+1 415 555 0199"}).decode(),
        orjson.dumps({"user": {"phone": "12"}, "ip_address": "10.0.0.7"}).decode(),
    ]  # fmt: skip
    messages = pl.Series(
        [
            [{"role": "user", "content": "I am c1@x.io"}],
            [{"role": "assistant", "content": "crm CRM-99182 ok"}],
        ],
        dtype=pl.List(MESSAGE),
    )
    frame = pl.DataFrame({"meta": meta, "messages": messages, "text": ["CRM-99182 c1@x.io", "fine"]})
    original = frame.clone()
    clean, report = redact_frame(
        frame,
        text_columns=["text"],
        json_columns=["meta"],
        message_columns=["messages"],
        field_rules={
            "*.email": "EMAIL",
            "*.phone": "PHONE",
            "*.ip_address": "IP",
            "meta.customer.crm_id": "CRM",
        },
    )
    first = orjson.loads(clean["meta"][0])
    assert first["customer"] == {"email": "<EMAIL_1>", "tier": "gold", "crm_id": "<CRM_1>"}
    assert "415 555 0199" not in clean["meta"][0]  # detected right after a JSON \n escape
    second = orjson.loads(clean["meta"][1])
    assert second == {"user": {"phone": "<PHONE_1>"}, "ip_address": "<IP_1>"}
    # the field value is propagated to free text (same placeholder), the short "12" is not
    assert clean["text"].to_list() == ["<CRM_1> <EMAIL_1>", "fine"]
    assert clean["messages"].to_list() == [
        [{"role": "user", "content": "I am <EMAIL_1>"}],
        [{"role": "assistant", "content": "crm <CRM_1> ok"}],
    ]
    assert report.field_rule_hits == 4
    assert frame.equals(original)  # the input frame is never modified


def test_column_field_rule_pseudonymises_ids():
    frame = pl.DataFrame(
        {"user_id": ["alice-1234", "bob-5678", "alice-1234"], "text": ["hi alice-1234", "x", "y"]}
    )
    clean, _ = redact_frame(frame, text_columns=["user_id", "text"], field_rules={"user_id": "USER"})
    assert clean["user_id"].to_list() == ["<USER_1>", "<USER_2>", "<USER_1>"]
    assert clean["text"][0] == "hi <USER_1>"


def test_deny_list():
    clean, report = redact_frame(pl.DataFrame({"t": ["Acme Corp called from host db-prod-7"]}), text_columns=["t"],
                                 deny_list=["Acme Corp", "db-prod-7"])  # fmt: skip
    assert clean["t"][0] == "<DENY_1> called from host <DENY_2>"
    assert report.counts == {"DENY": 2}


class _Broken:
    name = "broken"
    version = "0"

    def find(self, texts):
        raise RuntimeError("model file missing")


def test_failing_detector_raises_redaction_error():
    with pytest.raises(RedactionError, match="broken.*model file missing"):
        redact_frame(
            pl.DataFrame({"t": ["a@b.io"]}), text_columns=["t"], detectors=[PatternDetector(), _Broken()]
        )


def test_detector_returning_garbage_is_an_error():
    class Bad:
        name, version = "bad", "0"

        def find(self, texts):
            return [("EMAIL", "a@b.io")]

    with pytest.raises(RedactionError, match="expected Finding"):
        redact_frame(pl.DataFrame({"t": ["a@b.io"]}), text_columns=["t"], detectors=[Bad()])


def test_redaction_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    clean, report = redact_frame(pl.DataFrame({"t": ["mail a@b.io"]}), text_columns=["t"])
    assert clean["t"][0] == "mail <EMAIL_1>"
    assert report.to_dict()["ner"] == "not run"


class _FakeResult:
    def __init__(self, start, end, entity_type):
        self.start, self.end, self.entity_type = start, end, entity_type


class _FakeAnalyzer:
    """Stands in for presidio_analyzer.AnalyzerEngine: finds the word 'Dana' as a PERSON."""

    version = "fake-1"

    def analyze(self, text, language, entities=None, score_threshold=None):
        return [_FakeResult(m.start(), m.end(), "PERSON") for m in re.finditer("Dana", text)]


def test_presidio_detector_plugs_in():
    detector = PresidioDetector(_FakeAnalyzer())
    clean, report = redact_frame(
        pl.DataFrame({"t": ["Dana wrote from dana@x.io", "Dana again"]}),
        text_columns=["t"],
        detectors=[PatternDetector(), detector],
    )
    assert clean["t"].to_list() == ["<PERSON_1> wrote from <EMAIL_1>", "<PERSON_1> again"]
    assert report.ner == "run"
    assert {"name": "presidio", "version": "fake-1"} in [dict(d) for d in report.detectors]


def test_presidio_without_the_package_says_how_to_install(monkeypatch):
    import workbench._optional as optional

    def missing(module, *, purpose):
        raise optional.MissingDependency(
            f"{purpose} needs the {module!r} package: pip install 'workbench[presidio]'"
        )

    monkeypatch.setattr("workbench.export.detectors.require", missing)
    with pytest.raises(optional.MissingDependency, match="presidio"):
        PresidioDetector()


def test_custom_detector_findings_are_used():
    class Names:
        name, version = "names", "1"

        def find(self, texts):
            return [Finding("NAME", "Zed")]

    clean, _ = redact_frame(
        pl.DataFrame({"t": ["Zed here", "nobody"]}), text_columns=["t"], detectors=[Names()]
    )
    assert clean["t"].to_list() == ["<NAME_1> here", "nobody"]


def test_deny_list_detector_alone():
    found = DenyListDetector(["alpha"]).find(pl.Series(["alpha beta alpha", None]))
    assert found == [Finding("DENY", "alpha", 2)]
