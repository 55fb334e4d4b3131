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
