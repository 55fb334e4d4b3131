"""The public surface of tessera.psi, and no side effects at import."""

import subprocess
import sys

import tessera.psi as psi


def test_exported_members_exist_and_are_documented():
    for name in psi.__all__:
        obj = getattr(psi, name)
        if callable(obj):
            assert obj.__doc__, f"tessera.psi.{name} has no docstring"


def test_import_loads_no_library_and_starts_no_thread():
    code = (
        "import threading, tessera.psi, tessera.ot.groups as g; "
        "print(threading.active_count(), g._libsodium.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "0"]
