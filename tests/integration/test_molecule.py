"""Each Molecule scenario in extensions/molecule runs its full test sequence (molecule test)."""
import os
import subprocess
import sys

import pytest

from world import paths

SCENARIOS = sorted(d for d in os.listdir(os.path.join(paths.REPO, "extensions", "molecule"))
                   if os.path.isfile(os.path.join(paths.REPO, "extensions", "molecule", d, "molecule.yml")))


@pytest.mark.fleet
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # The scenarios point ANSIBLE_COLLECTIONS_PATH at the linked checkout themselves (molecule.yml).
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["NO_COLOR"] = "1"
    proc = subprocess.run(["molecule", "test", "-s", scenario], cwd=paths.REPO, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, "molecule test -s %s failed:\n%s\n%s" % (scenario, proc.stdout[-6000:], proc.stderr[-3000:])
