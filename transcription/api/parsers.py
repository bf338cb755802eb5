"""JSON bodies as JSON defines them: no NaN, no Infinity, no number too large for a float.

Python's json module reads `NaN`, `Infinity` and `-Infinity` (not JSON) and turns `1e400` into
infinity; a value like that got as far as a model field or `int()` and answered 500. DRF's own
parser refuses the three constants (its STRICT_JSON setting) but lets `1e400` through. `loads` and
`StrictJSONParser` (every REST view's JSON parser, REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]) refuse
all of them as a parse error, so a view never sees a non-finite number.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

NOT_FINITE = "Numbers must be finite: NaN, Infinity and values past a float's range (1e400) are not JSON."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number. {NOT_FINITE}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range. {NOT_FINITE}")
    return value


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads that raises ValueError for NaN, Infinity and numbers out of a float's range."""
    return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing non-finite numbers as well (400 `parse_error`)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(codecs.getreader(encoding)(stream).read())
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
