"""The data layer imports nothing of Tessera but the error tree, and exports what it lists."""

import ast
from pathlib import Path

import tessera.data
import tessera.data.synthetic

PACKAGE = Path(tessera.data.__file__).parent


def test_data_imports_only_errors_and_itself():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] == "tessera":
                    assert name == "tessera.errors" or name.startswith("tessera.data"), (path.name, name)


def test_exported_members_exist():
    for mod in (tessera.data, tessera.data.synthetic):
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.{name} is in __all__ but missing"
