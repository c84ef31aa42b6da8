"""Text people type that is shown as one line: names and titles.

Control characters (CR/LF, tabs, ANSI escapes, bidi overrides) in a name would break an
e-mail header, a log line or an operator's terminal. They are removed here, in one place,
before any service stores a name.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls, DEL, zero-width and bidirectional formatting characters.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]")
_SPACES = re.compile(r"\s+")


def single_line(value: str) -> str:
    """Return `value` as one clean line: controls become spaces, runs of spaces one space."""
    value = unicodedata.normalize("NFC", value)
    return _SPACES.sub(" ", _CONTROLS.sub(" ", value)).strip()


def terminal_safe(text: str, *, keep_line_breaks: bool = True) -> str:
    """Return `text` for a terminal: every control character made visible (`\\x1b`).

    Line breaks are kept for text the program laid out, and made visible in a table cell.
    """

    def visible(line: str) -> str:
        return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", line)

    if not keep_line_breaks:
        return visible(text)
    return "\n".join(visible(line) for line in text.split("\n"))
