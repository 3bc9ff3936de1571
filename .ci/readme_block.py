"""Print the shell command README.md gives under ``<!-- ci: NAME -->``.

Usage: python3 .ci/readme_block.py NAME [README]. The marker must appear exactly once and be
followed (blank lines allowed) by a fenced block; the block's lines are printed as they are.
CI runs what this prints, so the README's commands are the ones that get tested.
"""

from __future__ import annotations

import sys
from pathlib import Path


def readme_block(text: str, name: str) -> str:
    """The non-empty fenced block after ``<!-- ci: name -->`` in ``text``."""
    marker = f"<!-- ci: {name} -->"
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if line.strip() == marker]
    if len(hits) != 1:
        raise ValueError(f"expected the line '{marker}' once, found it {len(hits)} times")
    rest = iter(lines[hits[0] + 1 :])
    opening = next((line for line in rest if line.strip()), "")
    if not opening.startswith("```"):
        raise ValueError(f"'{marker}' must be followed by a ``` fenced block")
    body = []
    for line in rest:
        if line.startswith("```"):
            break
        body.append(line)
    else:
        raise ValueError(f"the block after '{marker}' has no closing ```")
    command = "\n".join(body).strip()
    if not command:
        raise ValueError(f"the block after '{marker}' is empty")
    return command


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: readme_block.py NAME [README]", file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parents[1] / "README.md"
    try:
        print(readme_block(path.read_text(encoding="utf-8"), argv[0]))
    except (OSError, ValueError) as err:
        print(f"{path}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
