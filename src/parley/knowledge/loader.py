"""Read a fact sheet: Markdown, CSV or JSON Lines. Every problem is a :class:`KnowledgeError` naming the line.

Accepted shapes (``docs/knowledge.md`` has examples):

* **Markdown** (``.md``): every paragraph, list item and table row is one fact; the headings above it are its
  topic. A heading that asks a question ("## Can I park there?") makes the text under it its answer.
* **CSV** (``.csv``, with a header row; comma, semicolon or tab): a ``fact`` (or ``text``) column, or
  ``question`` and ``answer`` columns; optional ``topic`` and ``id`` columns; other columns are ignored.
* **JSON Lines** (``.jsonl``): one object a line with the same keys as the CSV columns.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from .facts import Fact, KnowledgeError

SUFFIXES = (".md", ".markdown", ".csv", ".jsonl")
# Far beyond a business fact sheet (hundreds to a few thousand facts): a bigger file is almost surely the
# wrong file, and indexing it would hold the start-up for a long time.
MAX_FACTS = 100_000


def load_facts(path: Path) -> list[Fact]:
    """The facts in ``path``, in file order; raises :class:`KnowledgeError` for any unusable file."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise KnowledgeError(f"{path}: unsupported knowledge file type {suffix or '(none)'!r}; use .md, .csv or .jsonl")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if suffix == ".csv":
        facts = _csv_facts(path, text)
    elif suffix == ".jsonl":
        facts = _jsonl_facts(path, text)
    else:
        facts = _markdown_facts(text)
    if not facts:
        raise KnowledgeError(f"{path}: no facts found (the file is empty or holds no {_SHAPES[suffix]})")
    if len(facts) > MAX_FACTS:
        raise KnowledgeError(f"{path}: {len(facts)} facts; at most {MAX_FACTS} are accepted")
    return facts


_SHAPES = {
    ".md": "paragraphs, list items or table rows",
    ".markdown": "paragraphs, list items or table rows",
    ".csv": "data rows",
    ".jsonl": "objects",
}


# --- CSV and JSON Lines: one record per fact ------------------------------------------------------------------


def _record_fact(record: dict[str, Any], where: str, default_id: str) -> Fact | None:
    """A fact from a record with ``fact``/``text`` or ``question`` and ``answer`` (plus ``topic``, ``id``)."""
    values = {str(key).strip().lower(): _text(value) for key, value in record.items() if key is not None}
    fact = values.get("fact") or values.get("text")
    question, answer = values.get("question", ""), values.get("answer", "")
    if not any(values.values()):
        return None  # a blank row
    if fact:
        topic = values.get("topic", "")
    elif question and answer:
        topic = " / ".join(part for part in (values.get("topic", ""), question) if part)
        fact = answer
    elif question or answer:
        missing = "answer" if question else "question"
        raise KnowledgeError(f"{where}: a question needs an answer and an answer its question ({missing} is empty)")
    else:
        raise KnowledgeError(f"{where}: no 'fact' (or 'text') and no 'question'/'answer' in this record")
    return Fact(values.get("id") or default_id, fact, topic)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return " ".join(str(value).split())
    raise ValueError(f"expected text, got {type(value).__name__}")


def _csv_facts(path: Path, text: str) -> list[Fact]:
    # The delimiter is whichever of comma, semicolon and tab the header line uses most (spreadsheets in
    # some locales export semicolons); quoting is standard. csv.Sniffer guesses odd dialects on small files.
    first_line = text.partition("\n")[0]
    delimiter = max(",;\t", key=first_line.count)
    # strict: a stray or unterminated quote is an error, not a fact that swallows the rest of the file.
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        return _csv_rows(path, reader)
    except csv.Error as exc:
        # line_num counts the lines of the records read whole: the bad one starts on the next line.
        raise KnowledgeError(f"{path}:{reader.line_num + 1}: malformed CSV: {exc}") from None


def _csv_rows(path: Path, reader: csv.DictReader[str]) -> list[Fact]:
    header = {name.strip().lower() for name in reader.fieldnames or [] if name}
    if not header:
        return []
    if not header & {"fact", "text"} and not {"question", "answer"} <= header:
        raise KnowledgeError(
            f"{path}:1: the header needs a 'fact' (or 'text') column, or 'question' and 'answer' columns; "
            f"found {', '.join(sorted(header))}"
        )
    facts = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if row.get(None):  # type: ignore[call-overload]  # DictReader puts surplus cells under None
            raise KnowledgeError(f"{where}: more cells than the header has columns")
        if fact := _record_fact(row, where, f"L{reader.line_num}"):
            facts.append(fact)
    return facts


def _jsonl_facts(path: Path, text: str) -> list[Fact]:
    facts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise KnowledgeError(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise KnowledgeError(f"{where}: expected a JSON object, got {type(record).__name__}")
        try:
            fact = _record_fact(record, where, f"L{number}")
        except ValueError as exc:
            if isinstance(exc, KnowledgeError):
                raise
            raise KnowledgeError(f"{where}: {exc}") from None
        if fact:
            facts.append(fact)
    return facts


# --- Markdown: paragraphs, list items and table rows under their headings -------------------------------------


def _markdown_facts(text: str) -> list[Fact]:
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    facts: list[Fact] = []
    headings: list[tuple[int, str]] = []  # (level, text) of the headings in force
    header: list[str] = []  # the current table's column names
    row: list[str] = []
    row_line = 0
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            level = int(token.tag[1:])
            headings = [(lvl, title) for lvl, title in headings if lvl < level]
            headings.append((level, _inline_text(tokens[index + 1])))
        elif token.type == "inline" and tokens[index - 1].type == "paragraph_open":
            if content := _inline_text(token):
                facts.append(Fact(_line_id(tokens[index - 1]), content, _topic(headings)))
        elif token.type == "tr_open":
            row, row_line = [], (token.map or [0])[0] + 1
        elif token.type == "inline" and tokens[index - 1].type in ("th_open", "td_open"):
            row.append(_inline_text(token))
        elif token.type == "tr_close":
            if not header:
                header = row
            elif any(row):
                cells = "; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(header, row, strict=False))
                facts.append(Fact(f"L{row_line}", cells, _topic(headings)))
        elif token.type == "table_close":
            header = []
    return facts


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: emphasis, links and code lose their markup; breaks become spaces."""
    pieces = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append(" ")
        elif child.type == "image":
            pieces.append(child.content)
    return " ".join("".join(pieces).split())


def _topic(headings: list[tuple[int, str]]) -> str:
    return " / ".join(title for _, title in headings if title)


def _line_id(token: Token) -> str:
    return f"L{(token.map or [0])[0] + 1}"
