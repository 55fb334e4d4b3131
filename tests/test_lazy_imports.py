"""A party process pays only for what it uses: heavy optional libraries are imported where used.

Importing Tessera cost about 3 s per party process when OpenDP's prelude (which imports
scikit-learn), scipy.stats and pandas were imported at module top.
"""

import json
import subprocess
import sys

HEAVY = ["sklearn", "scipy", "pandas", "opendp", "opendp.prelude", "pyarrow"]


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"import json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_a_party_and_the_analysis_library_loads_no_heavy_library():
    loaded = _loaded_after("import tessera, tessera.runtime.party, tessera.jobs.party, tessera.analytics, tessera.dp")
    assert not any(loaded.values()), [m for m, v in loaded.items() if v]


def test_dp_accounting_and_noise_use_opendp_without_its_prelude():
    loaded = _loaded_after(
        "from tessera.dp.accounting import gaussian_rho, laplace_epsilon, rho_to_epsilon\n"
        "from tessera.dp.noise import discrete_gaussian, discrete_laplace\n"
        "assert gaussian_rho(1, 2.0) == 0.125 and laplace_epsilon(1, 2.0) == 0.5\n"
        "assert rho_to_epsilon(0.125, 1e-6) > 0\n"
        "assert discrete_gaussian(3.0, 5).shape == (5,) and discrete_laplace(3.0, 5).dtype.name == 'int64'"
    )
    assert loaded["opendp"] and not loaded["opendp.prelude"] and not loaded["sklearn"]


def test_run_local_and_client_are_still_exported():
    import tessera

    assert callable(tessera.run_local) and tessera.LocalResult.__name__ == "LocalResult"
    assert tessera.Client.__name__ == "Client"


def test_a_party_process_loads_neither_the_node_service_nor_the_planner_nor_the_wan_relay():
    probe = ("import json, sys\nimport tessera.jobs.party\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('tessera.node', 'tessera.jobs.planner', "
             "'tessera.runtime.relay', 'tessera.cli', 'httpx', 'fastapi', 'uvicorn')))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


#: What no command but the ones that compute (``run``, ``bench``, ``demo``...) or serve needs.
CLI_HEAVY = ["numpy", "pandas", "duckdb", "fastapi", "uvicorn", "opendp", "tessera.mpc", "tessera.analytics",
             "tessera.node.server", "tessera.jobs"]


def _cli(*args: str) -> tuple[object, str, list[str]]:
    """Run ``tessera ARGS`` in a fresh interpreter: its exit status, its output, and the modules
    it loaded of CLI_HEAVY and of ``tessera.cli.*``."""
    probe = ("import json, runpy, sys\n"
             f"sys.argv = ['tessera', *{list(args)!r}]\n"
             "try:\n    runpy.run_module('tessera.cli', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
             f"heavy = {CLI_HEAVY!r}\n"
             "loaded = sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + '.' for h in heavy))\n"
             "                or m.startswith('tessera.cli.'))\n"
             "print(json.dumps({'exit': code, 'loaded': loaded}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    *lines, last = out.stdout.strip().splitlines()
    report = json.loads(last)
    return report["exit"], "\n".join(lines), report["loaded"]


def test_tessera_version_imports_no_subcommand_and_no_heavy_library():
    code, output, loaded = _cli("--version")
    assert code in (0, None) and output == "tessera 0.1.0"
    assert loaded == ["tessera.cli.errors", "tessera.cli.main"]


def test_tessera_help_lists_every_command_without_importing_any():
    from tessera.cli.main import COMMANDS

    code, output, loaded = _cli("--help")
    assert code in (0, None)
    for name, entry in COMMANDS.items():
        assert f"│ {name} " in output, name
        assert entry.help.split()[0] in output
    assert loaded == ["tessera.cli.errors", "tessera.cli.main"]


def test_a_subcommand_imports_only_its_own_module():
    code, output, loaded = _cli("contract", "--help")
    assert code in (0, None) and "init" in output and "verify" in output
    assert loaded == ["tessera.cli.contract", "tessera.cli.errors", "tessera.cli.main"]
    code, output, loaded = _cli("node", "--help")
    assert code in (0, None) and "start" in output
    assert loaded == ["tessera.cli.errors", "tessera.cli.main", "tessera.cli.node"]


def test_a_party_loads_no_psi_protocol_unless_it_runs_a_psi():
    """The PSI protocols, their groups (libsodium) and the KKRT OT extension are loaded when a PSI
    runs; a party imports only the PSI spec and result types; the ledger loads no policy."""
    probe = ("import json, sys\nimport tessera.jobs.party\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('tessera.psi._api', 'tessera.psi._two', "
             "'tessera.psi._three', 'tessera.psi._oprf', 'tessera.ot.groups', 'tessera.ot.kkrt', 'tessera.ot.base', "
             "'tessera.governance.policy', 'tessera.governance.contract', 'tessera.data.draft', "
             "'tessera.runtime.cluster')))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_lazy_package_exports_are_the_modules_own_objects():
    import tessera.data.schema
    import tessera.governance.ledger
    import tessera.psi._api
    from tessera import data, governance, psi

    assert data.Schema is tessera.data.schema.Schema and psi.run_psi is tessera.psi._api.run_psi
    assert governance.SqliteLedger is tessera.governance.ledger.SqliteLedger
    try:
        data.nothing_here  # noqa: B018
    except AttributeError as e:
        assert str(e) == "module 'tessera.data' has no attribute 'nothing_here'"
    else:
        raise AssertionError("a missing name must raise AttributeError")
