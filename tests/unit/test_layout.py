"""The layer's import rules, read from the source (so a late import inside a function
counts too):

- a stage (intake, clicks, matching, posting) imports domain, ports, parking,
  config and observability, never another stage or an adapter;
- domain imports nothing with I/O and nothing of the bridge outside domain;
- only adapters touch botocore, boto3, requests or stripe;
- the package docstring names every subpackage and top-level module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stripe_everflow

PACKAGE = Path(stripe_everflow.__file__).parent
STAGES = ("intake", "clicks", "matching", "posting")
SHARED_BY_STAGES = ("domain", "ports", "parking", "config", "observability")
IO_LIBRARIES = ("botocore", "boto3", "requests", "stripe", "urllib3", "socket", "http.client")
# Standard-library modules that do I/O; domain code may use none of them.
IO_STDLIB = ("os", "subprocess", "urllib.request", "shutil", "pathlib", "sqlite3", "ssl")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("stripe_everflow", *parts)).removesuffix(".__init__")
        found.append((name, path))
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "stripe_everflow":
                names.update(f"stripe_everflow.{alias.name}" for alias in node.names)
    return names


def _is(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _part(module: str) -> str:
    """The first component under the package: domain, intake, adapters, ports, ..."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = _modules()


def test_the_layout_is_found() -> None:
    parts = {_part(name) for name, _ in MODULES}
    assert {*STAGES, "domain", "adapters", "ports", "parking", "config"} <= parts


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_import_rules(module: str, path: Path) -> None:
    part = _part(module)
    bridge = {i for i in _imports(path) if _is(i, "stripe_everflow")}
    libraries = {i for i in _imports(path) if not _is(i, "stripe_everflow")}
    if part != "adapters":
        touched = {i for i in libraries if _is(i, *IO_LIBRARIES)}
        assert not touched, f"{module} imports {touched}: only adapters may"
    if part in STAGES:
        allowed = (*SHARED_BY_STAGES, part)
        wrong = {i for i in bridge if _part(i) not in allowed}
        assert not wrong, f"stage {module} imports {wrong}; a stage uses domain and ports"
    elif part in ("domain", "ports", "parking", "config"):
        own = ("domain",) if part == "domain" else ("domain", "ports", part)
        wrong = {i for i in bridge if _part(i) not in own}
        assert not wrong, f"{module} imports {wrong}"
        if part == "domain":
            io = {i for i in libraries if _is(i, *IO_STDLIB)}
            assert not io, f"domain module {module} imports {io}"
    elif part == "adapters":
        wrong = {i for i in bridge if _part(i) in (*STAGES, "parking")}
        assert not wrong, f"adapter {module} imports the stage {wrong}"


def test_the_package_docstring_is_a_map_of_every_part() -> None:
    doc = stripe_everflow.__doc__ or ""
    parts = {_part(name) for name, _ in MODULES} - {""}
    missing = {part for part in parts if f"``{part}``" not in doc}
    assert not missing, f"the package docstring does not name {missing}"
