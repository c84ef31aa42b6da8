"""Request bodies the API accepts: JSON nested at most a few levels, and forms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No endpoint takes documents deeper than this; deeper ones only cost parsing time.
JSON_MAX_DEPTH = 32


def _depth_exceeds(document: Any, limit: int) -> bool:
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(value, Mapping):
            pending.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            pending.extend((child, depth + 1) for child in value)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (as a 400 parse_error) what would exhaust the stack."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            document = json.loads(stream.read().decode(encoding))
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise ParseError(f"JSON parse error - {error}") from None
        if _depth_exceeds(document, JSON_MAX_DEPTH):
            raise ParseError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels.")
        return document
