"""Standard addresses (标准地址): parse, normalise and geocode Chinese addresses.

Pure Python, no web code: :func:`parse` turns free text into components,
:class:`AddressIndex` geocodes parsed text against the standard-address table (its names
in memory, its rows looked up in PostgreSQL), :mod:`layers.addresses.variants` makes a
messy benchmark set.

Examples:
    >>> from layers.addresses import parse
    >>> p = parse("广东中山石岐区中山路十二号翠景花园三栋2单元502")
    >>> p.city, p.road, p.house_number, p.building, p.unit, p.room
    ('中山市', '中山路', '12号', '3栋', '2单元', '502室')
"""

from layers.addresses.gazetteer import Gazetteer, default_gazetteer
from layers.addresses.index import AddressIndex, GeocodeResult
from layers.addresses.normalise import normalise_text
from layers.addresses.parse import ParsedAddress, parse

__all__ = [
    "AddressIndex",
    "Gazetteer",
    "GeocodeResult",
    "ParsedAddress",
    "default_gazetteer",
    "normalise_text",
    "parse",
]
