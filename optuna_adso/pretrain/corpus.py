"""An offline multi-domain corpus from real text that every Python installation carries.

Four domains, written as local files so the demo exercises the real loading path (jsonl, parquet,
txt): ``code`` (the standard library's Python source), ``docs`` (the language reference topics
shipped in ``pydoc_data``), ``docstrings`` (prose extracted from the standard library's
docstrings) and ``licenses`` (the interpreter's ``LICENSE.txt`` and the license files of installed
distributions).  Nothing is downloaded.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sysconfig
from pathlib import Path

from optuna_adso.pretrain.data import Domain

DOMAIN_NAMES = ("code", "docs", "docstrings", "licenses")
_VERSION = "1"


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _capped(items, max_chars: int) -> list[str]:
    out, total = [], 0
    for text in items:
        if total >= max_chars:
            break
        if text and text.strip():
            out.append(text)
            total += len(text)
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _code(max_chars: int) -> list[str]:
    return _capped((_read(p) for p in sorted(_stdlib().glob("*.py"))), max_chars)


def _docs(max_chars: int) -> list[str]:
    from pydoc_data.topics import topics

    return _capped((topics[k] for k in sorted(topics)), max_chars)


def _docstrings(max_chars: int) -> list[str]:
    """One document per package module: its docstrings joined, code stripped (so unlike ``code``)."""
    def docs_of(path: Path) -> str:
        try:
            tree = ast.parse(_read(path))
        except SyntaxError:
            return ""
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        return "\n\n".join(d for d in (ast.get_docstring(n) for n in nodes) if d)

    files = sorted(p for p in _stdlib().glob("*/*.py") if "test" not in p.parts[-2] and "site-packages" not in p.parts)
    return _capped((docs_of(p) for p in files), max_chars)


def _licenses(max_chars: int) -> list[str]:
    paths = [_stdlib() / "LICENSE.txt"]
    for key in ("purelib", "platlib"):
        root = Path(sysconfig.get_paths()[key])
        paths += sorted(p for p in root.glob("*.dist-info/**/*") if p.is_file() and "LICEN" in p.name.upper())
    seen, texts = set(), []
    for p in paths:
        text = _read(p) if p.exists() else ""
        digest = hashlib.sha1(text.encode()).hexdigest()
        if text.strip() and digest not in seen:
            seen.add(digest)
            texts.append(text)
    return _capped(texts, max_chars)


def build_corpus(root: str | os.PathLike, max_chars_per_domain: int = 400_000) -> list[Domain]:
    """Write the corpus under ``root`` (once) and return its four :class:`Domain` objects."""
    root = Path(root) / f"corpus-v{_VERSION}-{max_chars_per_domain}"
    done = root / "DONE"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        with open(root / "code.jsonl", "w", encoding="utf-8") as f:
            for text in _code(max_chars_per_domain):
                f.write(json.dumps({"text": text}) + "\n")
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": _docs(max_chars_per_domain)}), root / "docs.parquet")
        for name, texts in (("docstrings", _docstrings(max_chars_per_domain)), ("licenses", _licenses(max_chars_per_domain))):
            (root / name).mkdir(exist_ok=True)
            for i, text in enumerate(texts):
                (root / name / f"{i:04d}.txt").write_text(text, encoding="utf-8")
        done.write_text("ok")
    return [
        Domain.from_files("code", root / "code.jsonl"),
        Domain.from_files("docs", root / "docs.parquet"),
        Domain.from_files("docstrings", root / "docstrings"),
        Domain.from_files("licenses", root / "licenses"),
    ]
