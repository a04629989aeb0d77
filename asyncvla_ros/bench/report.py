"""How every benchmark reports: one JSON document (imports nothing heavier than the standard library)."""

from __future__ import annotations

import json
from pathlib import Path


def emit(results: list, out: str = "") -> None:
    """The JSON report on stdout, and in `out` when given."""
    text = json.dumps(results, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    print(text)
