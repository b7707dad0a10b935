"""No typed numbers in prose: every figure a reader sees in a chapter's text comes from ``glue``.

The test parses each chapter's MyST source (``chapters/*.md``, and ``intro.md``) as the book does and looks
for digits in the *prose*, i.e. in text that is none of:

* a role (``{glue:text}`name```, ``{doc}``, ``{ref}``, ...), inline code, inline or display math, a code
  cell or any code block, a URL, an HTML tag, the YAML front matter;
* the question: the first ``{admonition}`` of a chapter (the exercise quoted verbatim), every admonition
  titled "The question" (Part II quotes one interview question per section), and in ``intro.md``
  the section "The questions";
* a citation year (a four-digit number from 1980 to 2029);
* part of a name: digits right after a letter (``MobileNetV2``, ``Conv2D``, ``float16``, ``L2``, ``B0``,
  ``dense1``), after a hyphen that follows a capitalised name (``ResNet-50``, ``LeNet-5``, ``ImageNet-1k``),
  or a dimension tag (``2D``, ``1D``, ``3D``);
* structural: the chapter number of the title (``# 7. ...``); a reference (``chapter 8``, ``chapters 2
  and 3``, ``question 2``, ``section 3.3``, ``figure 2``); a square kernel / window / image size written
  as equal numbers (``3 × 3``, ``2 × 2 × 2``, ``28 × 28``; only the equal part: in ``5 × 5 × 32`` the
  ``32`` is flagged); a stride (``stride 2``, ``stride-2``, ``stride of 2``); a metric's name (``top-5``);
  a phase of a procedure (``phase 2``); the machine (``2-core CPU``); a software version (``Keras 3``,
  ``TensorFlow 2.16``); a unit's definition (``MB = 10⁶ bytes``).

Everything else is reported, per chapter, with its line in the ``.md`` and that line's text. To see the list
for one chapter while editing it::

    .venv/bin/python tools/prose_numbers.py chapters/07_fully_convolutional.md

**How to fix a flagged number.** If it is a result (a count, a measurement, anything the code computes or
could compute), glue it: ``book.glue("name", value, fmt)`` in a code cell (tagged ``remove-cell`` if the
cell only glues) and ``{glue:text}`name``` in the prose. If it is code (an argument, a shape in a call),
put it in backticks; if it is part of a formula (``(N − k) / s + 1``), write the formula as math
(``$(N - k) / s + 1$``).

**How to allow a number.** Only for a number that is genuinely not a result: question text quoted outside
the question admonition, a figure a paper reports (quoted with the paper named and its year), or a
structural constant set in code that the rules above miss. Add to :data:`ALLOW`, under the file's name, a
*literal snippet of the prose* that contains the number, with a comment saying why it is allowed. A number
is allowed when it lies inside an occurrence of one of its file's snippets; the snippet is matched against
the text as the lister shows it (markup such as ``*``/``**`` removed, line breaks read as spaces), so
``"top-5 error of 15.3 %"`` allows the two numbers in that phrase and nowhere else. Keep snippets short but
specific; an entry that no longer matches anything fails :func:`test_every_allowance_is_used`.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = [ROOT / "intro.md", *sorted((ROOT / "chapters").glob("*.md"))]

# Literal prose snippets whose numbers are allowed, per file (see the module docstring). Keep it small:
# every entry says why its number is not a result that should be glued.
ALLOW: dict[str, dict[str, str]] = {
    "17_what_cnns_see_and_miss.md": {
        "the paper reports 79 % for the capsule network against 66 %": "Sabour et al. (2017), affNIST, quoted",
        "(99.23 % and 99.22 %, the capsule network stopped early": "Sabour et al. (2017), translated MNIST",
        "the 2017 paper reports 10.6 % test error on CIFAR-10": "Sabour et al. (2017), quoted",
        "reports 2.7 % test error on smallNORB and 10.6 % on CIFAR-10": "Sabour et al. (2017), quoted",
        "reduce the number of test errors by 45% compared to": "Hinton et al. (2018) abstract, quoted",
        "SE-ResNet-50 has 23.29 % top-1 error against 24.80 %": "Hu et al. (2018), Table 2",
        "at 3.87 against 3.86 GFLOPs": "Hu et al. (2018), Table 2",
        "move by up to 8 grey levels of 255": "Madry et al. (2018), CIFAR-10 threat model (epsilon = 8)",
        "reaches 87.3 % on clean test images and 45.8 %": "Madry et al. (2018), as tabulated by Raghunathan et al.",
        "reaches 95.2 % clean and 3.5 %": "Madry et al. (2018), as tabulated by Raghunathan et al.",
    },
    "11_convolution_layer.md": {
        "improved the top-1 accuracy by about 0.6%": "GoogLeNet paper (Szegedy et al., 2015), quoted",
        "a 1000-way fully-connected layer": "ResNet paper (He et al., 2016), quoted",
        "we only need to learn 3 × 3 = 9 weights (+1 bias)": "the circulated answer to Q08, quoted to correct it",
        "striate cortex, 1959": "year of Hubel & Wiesel's paper, cited (before the 1980 year rule)",
        "striate cortex, 1968": "year of Hubel & Wiesel's paper, cited (before the 1980 year rule)",
        "cat's visual cortex (1962)": "year of Hubel & Wiesel's paper, cited (before the 1980 year rule)",
    },
    "01_cnn_vs_dense.md": {
        "200 × 300 RGB": "the image size of question 2, used as an example and set in code",
    },
    "05_local_response_normalization.md": {
        "reduces our top-1 and top-5 error rates by 1.4% and 1.2%, respectively": "AlexNet paper, quoted",
    },
    "14_architectures_and_efficiency.md": {
        "16-layer-deep wide residual network": "Wide Residual Networks (2016), abstract, quoted",
        "reaching 25 % training error on CIFAR-10": "AlexNet paper (2012), Figure 1",
        "a 22 layers deep network": "Going Deeper with Convolutions (2015), abstract, quoted",
        "about 1.5 billion multiply-adds": "Going Deeper with Convolutions (2015), section 1",
        "relative gain of 28%": "Rethinking the Inception Architecture (2016), section 3.1, quoted",
        "33% cheaper": "Rethinking the Inception Architecture (2016), section 3.2, quoted",
        "an hour on 256 GPUs": "Goyal et al. (2017)",
        "mini-batches of 256 for up to 60 × 10⁴ iterations": "ResNet paper (2016), section 3.4",
        "Training ImageNet in 1 Hour": "title of Goyal et al. (2017)",
        "in one hour on 256 GPUs with mini-batches of 8192": "Goyal et al. (2017), abstract",
        "run 83% faster than": "RepVGG paper (2021), abstract, quoted",
        "on a 1080Ti GPU": "RepVGG paper (2021), abstract: the GPU's name",
        "lists 71.3 % top-1 for VGG16 and 77.1 % for EfficientNetB0": "keras.io applications table, quoted",
        "for a 90-epoch schedule": "Goyal et al. (2017), their schedule",
        "for 90 epochs in one hour": "Goyal et al. (2017), their schedule",
        '"4x smaller, 2x-3x speedup"': "TensorFlow post-training quantization guide, quoted",
    },
    "13_training_deep_cnns.md": {
        "the paper's 1202-layer network tested worse than its 110-layer one": "ResNet paper (2016), Table 6",
        "1202-layer network has a CIFAR-10 test error of 7.93%, against 6.43% for its 110-layer network":
            "ResNet paper (2016), Table 6, quoted",
        "Training ImageNet in 1 Hour": "title of Goyal et al. (2017)",
    },
    "09_mnist_from_scratch.md": {
        '"about 99.2%"': "Géron's solution notebook, quoted",
        '"99.5 to 99.7%"': "Géron's solution notebook, quoted",
    },
    "16_beyond_classification.md": {
        "32 filters 8 × 8 at stride 4, 64 filters 4 × 4 at stride 2, 64 filters 3 × 3 at stride 1, each with "
        "ReLU; a fully connected layer of 512 ReLU units": "DQN's layers as Mnih et al. (2015) state them, quoted",
        '"roughly 20000 (≈ 60 × 40 × 9)" anchors for a typical 1000 × 600 image':
            "Faster R-CNN paper (Ren et al., 2015), section 3.3, quoted",
        '"with only 300 proposals per image"': "Faster R-CNN paper (Ren et al., 2015), abstract, quoted",
    },
    "18_hands_on_implementations.md": {
        "ResNet-20 (0.27M parameters) reaches 8.75 % test error": "He et al. 2016, Table 6, quoted",
        "padded by 4 pixels, with flips, for 64k iterations": "He et al. 2016, section 4.2, quoted",
        "45k/5k train/validation split": "He et al. 2016, section 4.2, quoted",
    },
}

# Directives whose body is not prose (code, math, data, file paths).
NOT_PROSE = {
    "code-cell", "code-block", "code", "sourcecode", "literalinclude", "math", "raw", "eval-rst", "include",
    "toctree", "image", "csv-table", "glue", "glue:any", "glue:figure", "glue:math", "glue:text", "mermaid",
    "graphviz", "bibliography",
}
# Directives whose argument (after the name) is a prose title.
TITLED = {"admonition", "dropdown", "card", "tab-item", "topic", "sidebar"}

NUMBER = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*")
URL = re.compile(r"(?:https?://|www\.)\S+")
YEAR = re.compile(r"(?:198\d|199\d|20[0-2]\d)")
STRUCTURAL = [
    # square sizes: 3 × 3, 2 × 2 × 2, 28×28 (the equal part only)
    re.compile(r"(?<![\d.,])(\d+(?:,\d{3})*)(?:\s*[×x]\s*\1(?!\d|[.,]\d))+"),
    # references: chapter 8, chapters 2 and 3, question 2, section 3.3, figure 2, table 1
    re.compile(
        r"\b(?:[Cc]hapters?|[Qq]uestions?|[Ss]ections?|[Ff]igures?|[Tt]ables?)\s+\d+(?:\.\d+)*"
        r"(?:\s*(?:,|and|or|to|–|-)\s*\d+(?:\.\d+)*)*"
    ),
    # a stride: stride 2, stride-2, stride of 2, strides 2
    re.compile(r"\bstrides?(?:\s+of)?[\s-]+\d+\b"),
    # phases of a procedure: phase 1, phases 1 and 2
    re.compile(r"\b[Pp]hases?\s+\d+(?:\s*(?:,|and|or|to|–|-)\s*\d+)*"),
    # the machine: a 2-core CPU
    re.compile(r"\b\d+-core\b"),
    # metric names: top-1, top-5 error
    re.compile(r"\btop-\d+\b"),
    # software versions: Keras 3, TensorFlow 2.16, Python 3.11
    re.compile(r"\b(?:Keras|TensorFlow|Python|PyTorch|NumPy|CUDA|Jupyter Book)\s+\d+(?:\.\d+)*"),
    # unit definitions: MB = 10⁶ bytes, MiB = 2²⁰ bytes
    re.compile(r"\b(?:[kKMGT]i?B)\s*=\s*\d+[⁰¹²³⁴⁵⁶⁷⁸⁹]+"),
]
NAME_BEFORE_HYPHEN = re.compile(r"[A-Za-z][\w]*-$")

_PARSER = create_md_parser(
    MdParserConfig(enable_extensions={"colon_fence", "dollarmath", "amsmath", "deflist", "substitution"}),
    RendererHTML,
)


@dataclasses.dataclass(frozen=True)
class Hit:
    """A number found in prose: its 1-based line in the file, the number, and its sentence-level text."""

    line: int
    token: str
    text: str


@dataclasses.dataclass
class _Block:
    line: int  # 0-based file line where the block's text starts
    text: str  # prose text, skipped spans replaced by "…", line breaks kept as "\n"


def _inline_text(children) -> str:
    """The prose of an inline token: text kept, roles / code / math / HTML replaced by an ellipsis."""
    parts = []
    for child in children or []:
        if child.type == "text":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type in ("code_inline", "math_inline", "math_inline_double", "myst_role", "html_inline",
                            "substitution_inline", "image"):
            parts.append("…")
        # link_open/close, em/strong open/close carry no text of their own
    return URL.sub("…", "".join(parts))


def _directive(info: str) -> tuple[str | None, str]:
    """(name, argument) of a MyST directive fence's info string, or (None, "") for a plain code fence."""
    match = re.match(r"\s*\{([^}]+)\}\s*(.*)", info)
    return (match.group(1).strip(), match.group(2)) if match else (None, "")


def _blank_options(body: str) -> str:
    """The directive body with its option lines (``:class: tip`` or a ``---`` YAML block) blanked, so that
    line numbers are kept."""
    lines = body.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
        return "\n" * (end + 1) + "\n".join(lines[end + 1 :])
    i = 0
    while i < len(lines) and re.match(r"\s*:[\w-]+:", lines[i]):
        lines[i] = ""
        i += 1
    return "\n".join(lines)


def _blocks(source: str, offset: int, state: dict) -> list[_Block]:
    """The prose blocks of a MyST source whose first line is file line ``offset`` (0-based)."""
    blocks = []
    tokens = _PARSER.parse(source)
    line = offset
    for token in tokens:
        if token.map is not None:
            line = offset + token.map[0]
        if token.type == "heading_open":
            state["heading"] = token.tag
        elif token.type == "heading_close":
            state["heading"] = None
        if token.type == "inline":
            text = _inline_text(token.children)
            if state.get("heading") == "h1":
                text = re.sub(r"^\s*\d+\.", "…", text)  # the chapter number of the title
                state["seen_h1"] = True
            if state.get("heading") in ("h1", "h2"):
                state["section"] = token.content.strip()
            if state["section"] in state["skip_sections"]:
                continue
            blocks.append(_Block(line, text))
        elif token.type in ("fence", "colon_fence"):
            name, argument = _directive(token.info)
            if name is None or name in NOT_PROSE:
                continue
            if name == "admonition" and (argument.strip() == "The question" or not state["question_seen"]):
                state["question_seen"] = True  # a question, quoted verbatim (Part II has one per section)
                continue
            if state["section"] in state["skip_sections"]:
                continue
            if name in TITLED and argument:
                blocks.append(_Block(line, URL.sub("…", argument)))
            blocks.extend(_blocks(_blank_options(token.content), line + 1, state))
    return blocks


def _allowed_spans(text: str, snippets) -> list[tuple[int, int]]:
    flat = text.replace("\n", " ")
    spans = []
    for pattern in STRUCTURAL:
        spans += [m.span() for m in pattern.finditer(flat)]
    for snippet in snippets:
        start = flat.find(snippet)
        while start != -1:
            spans.append((start, start + len(snippet)))
            start = flat.find(snippet, start + 1)
    return spans


def _is_name_or_year(text: str, start: int, end: int) -> bool:
    before, after = text[:start], text[end:]
    token = text[start:end]
    if before and (before[-1].isalpha() or before[-1] == "_"):
        return True  # MobileNetV2, Conv2D, float16, L2, B0, dense1
    if NAME_BEFORE_HYPHEN.search(before) and any(c.isupper() for c in before.split()[-1]):
        return True  # ResNet-50, LeNet-5, ImageNet-1k
    if re.match(r"D(?![A-Za-z])", after):
        return True  # 2D, 1D, 3D
    return bool(YEAR.fullmatch(token))


def scan(path: pathlib.Path, allow: dict[str, dict[str, str]] | None = None) -> tuple[list[Hit], set[str]]:
    """The typed numbers in the prose of ``path`` (a MyST ``.md``), and the allow-list snippets that matched.

    Args:
        path: a chapter's ``.md`` file, or ``intro.md``.
        allow: the allow-list, by file name (default :data:`ALLOW`).
    """
    allow = ALLOW if allow is None else allow
    snippets = allow.get(path.name, {})
    source = path.read_text(encoding="utf-8")
    state = {
        "heading": None,
        "section": None,
        "question_seen": path.name == "intro.md",
        "skip_sections": {"The questions"} if path.name == "intro.md" else set(),
    }
    hits, used = [], set()
    for block in _blocks(source, 0, state):
        flat = block.text.replace("\n", " ")
        spans = _allowed_spans(block.text, snippets)
        used |= {s for s in snippets if s in flat}
        for match in NUMBER.finditer(block.text):
            start, end = match.span()
            if _is_name_or_year(block.text, start, end):
                continue
            if any(a <= start and end <= b for a, b in spans):
                continue
            line = block.line + block.text.count("\n", 0, start)
            hits.append(Hit(line + 1, match.group(), source.split("\n")[line].strip()))
    return hits, used


def report(path: pathlib.Path, hits: list[Hit]) -> str:
    """One line per prose line with typed numbers: ``l.N  tokens  | the line's text``."""
    by_line: dict[int, list[Hit]] = {}
    for hit in hits:
        by_line.setdefault(hit.line, []).append(hit)
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    rows = [f"{name}: {len(hits)} typed number(s) in prose"]
    for line, group in sorted(by_line.items()):
        tokens = ", ".join(h.token for h in group)
        rows.append(f"  l.{line:<4} {tokens:<20} | {group[0].text}")
    return "\n".join(rows)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_no_typed_numbers_in_prose(path):
    hits, _ = scan(path)
    if hits:
        pytest.fail("glue these numbers, or allow-list them (see this file's docstring):\n" + report(path, hits),
                    pytrace=False)


def test_every_allowance_is_used():
    names = {p.name for p in FILES}
    unknown = set(ALLOW) - names
    assert not unknown, f"ALLOW names files that do not exist: {sorted(unknown)}"
    stale = {
        name: sorted(set(snippets) - scan(ROOT / ("intro.md" if name == "intro.md" else f"chapters/{name}"))[1])
        for name, snippets in ALLOW.items()
    }
    stale = {name: s for name, s in stale.items() if s}
    assert not stale, f"allow-list snippets that match no prose any more (remove them): {stale}"


SAMPLE = """\
# 3. A chapter

```{admonition} The question
Why 42?
```

```{admonition} Short answer
:class: tip
It costs {glue:text}`cost` MACs, 12 times fewer (He et al., 2016), with `Conv2D(64, 3)`.
```

```{code-cell} ipython3
x = 123
```

A 3 × 3 kernel at stride 2 on 28 × 28 digits (1,000 × 1,000 photos), as in chapter 8: $n = 17$,
ResNet-50, MobileNetV2, 2D.
The map is 5 × 5 × 32, see https://example.org/v1/99 and {doc}`ch_9`.

1. What about 224 × 224?

   ```{dropdown} Answer
   It outputs 7 maps.
   ```

```{admonition} The question
A second quoted question (Part II): why 43?
```
"""


def test_scan_flags_typed_numbers_and_only_them(tmp_path):
    path = tmp_path / "03_sample.md"
    path.write_text(SAMPLE, encoding="utf-8")
    hits, used = scan(path, allow={})
    assert [(h.line, h.token) for h in hits] == [(9, "12"), (18, "32"), (23, "7")]
    hits, used = scan(path, allow={"03_sample.md": {"12 times fewer (He et al., 2016)": "a paper's figure"}})
    assert [h.token for h in hits] == ["32", "7"] and used == {"12 times fewer (He et al., 2016)"}
