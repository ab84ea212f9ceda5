"""Point every chapter's Colab install cell at the repository named in _config.yml.

The repository URL is one line in _config.yml (`repository.url`). The chapters' first code cells carry it too,
because on Colab a notebook runs alone and must know where to install gnet from. After changing the line in
_config.yml, run:

    python scripts/set_repo_url.py

tests/test_book.py fails while the two disagree. gnet/weights.py carries it too (a wheel downloads the book's
weights from the repository); tests/test_weights.py checks that one.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INSTALL_URL = re.compile(r"gnet\[book\] @ git\+(?P<url>[^@\"']+)@main")
WEIGHTS_URL = re.compile(r'^REPOSITORY_URL = "[^"]*"$', re.MULTILINE)  # where a wheel downloads the weights


def repository_url(root: Path = ROOT) -> str:
    config = yaml.safe_load((root / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def main() -> int:
    url = repository_url()
    changed = 0
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        text = path.read_text()
        updated = INSTALL_URL.sub(f"gnet[book] @ git+{url}@main", text)
        if updated != text:
            json.loads(updated)  # the URL has no quotes or backslashes, so the JSON stays valid
            path.write_text(updated)
            changed += 1
    weights = ROOT / "gnet" / "weights.py"
    text = weights.read_text()
    updated = WEIGHTS_URL.sub(f'REPOSITORY_URL = "{url}"', text)
    if updated != text:
        weights.write_text(updated)
        changed += 1
    print(f"repository.url = {url}; updated {changed} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
