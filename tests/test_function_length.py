"""No function runs past ~80 lines unless its docstring says why (issue 15).

A function's length is its whole ``def``, docstring included. A longer one passes
only when its docstring has a sentence starting "Long because".
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
LIMIT = 80
REASON = "Long because"

# A migration's upgrade is one list of table definitions.
MIGRATIONS = ("careloop/store/migrations/*",)


def _excluded(relative: str) -> bool:
    return any(fnmatch(relative, pattern) for pattern in MIGRATIONS)


def long_functions_without_a_reason(root: Path) -> list[str]:
    """Return ``path:line name (N lines)`` for each long function lacking a reason."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if _excluded(relative):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > LIMIT and REASON not in (ast.get_docstring(node) or ""):
                found.append(f"{relative}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_every_function_over_80_lines_says_why_in_its_docstring():
    missing = long_functions_without_a_reason(SRC)
    assert not missing, (
        f"Functions over {LIMIT} lines need splitting into helpers, or a docstring "
        f'sentence starting "{REASON} ...":\n' + "\n".join(missing)
    )


def test_the_check_finds_a_long_function_without_a_reason(tmp_path):
    package = tmp_path / "careloop" / "analysis"
    package.mkdir(parents=True)
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (package / "long.py").write_text(f'def long():\n    """Do a lot."""\n{body}\n')
    (package / "explained.py").write_text(
        f'def explained():\n    """Do a lot.\n\n    {REASON} it is one table.\n    """\n{body}\n'
    )
    migrations = tmp_path / "careloop" / "store" / "migrations" / "versions"
    migrations.mkdir(parents=True)
    (migrations / "0001_tables.py").write_text(f"def upgrade():\n{body}\n")
    assert long_functions_without_a_reason(tmp_path) == [
        f"careloop/analysis/long.py:1 long ({LIMIT + 2} lines)"
    ]
