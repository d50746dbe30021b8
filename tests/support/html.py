"""Checks on generated HTML."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

URL_RE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)|(?:https?:)?//[A-Za-z0-9.\-]+(?::\d+)?""")


def external_references(html: str, base_url: str) -> list[str]:
    """Every absolute or protocol-relative URL in ``html`` that is not on ``base_url``."""
    own = urlsplit(base_url).netloc
    out = []
    for m in URL_RE.finditer(html):
        ref = m.group(1) or m.group(0)
        netloc = urlsplit(ref if "//" in ref else "").netloc
        if netloc and netloc != own:
            out.append(ref)
    return out
