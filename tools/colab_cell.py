"""Write (or check) every chapter's set-up cell (its first code cell) from _config.yml's repository URL.

    python tools/colab_cell.py          # exit 1 and list the chapters whose first cell differs
    python tools/colab_cell.py --write  # rewrite the first code cell of every chapters/*.md, then re-sync the .ipynb
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import jupytext
import yaml

from cnn_helpers.book import setup_cell_source

ROOT = pathlib.Path(__file__).resolve().parents[1]


def expected_source() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    return setup_cell_source(repo["url"], repo.get("branch", "main"))


def main(argv: list[str]) -> int:
    expected = expected_source()
    stale = []
    for md in sorted((ROOT / "chapters").glob("*.md")):
        notebook = jupytext.read(md)
        first = next((cell for cell in notebook.cells if cell.cell_type == "code"), None)
        if first is None:
            raise SystemExit(f"{md}: has no code cell; its first code cell must be the set-up cell")
        if first.source == expected:
            continue
        stale.append(md.name)
        if "--write" in argv:
            first.source = expected
            jupytext.write(notebook, md, fmt="md:myst")
            subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(md)], check=True)
    for name in stale:
        print(("rewrote " if "--write" in argv else "stale Colab cell: ") + name)
    return 1 if stale and "--write" not in argv else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
