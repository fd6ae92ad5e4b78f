"""Run a script inside its own virtualenv with one package, created on first use.

Used by scripts/chdb_check.py (chdb-core) and scripts/pii_samples.py (faker). The virtualenv
lives in $TALLY_CACHE/<name> (TALLY_CACHE defaults to <repo>/.cache); a marker file records that
the package was installed, so later runs start at once.
"""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def reexec_in_venv(name, package, script):
    """Re-execute `script` (with the same arguments) in the venv, unless already running there."""
    venv = Path(os.environ.get("TALLY_CACHE") or REPO / ".cache") / name
    marker = venv / f".{package}-installed"
    if Path(sys.prefix).resolve() == venv.resolve() and marker.exists():
        return
    py = venv / "bin" / "python"
    if not marker.exists():
        print(f"creating virtualenv {venv} (pip install {package}) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        package], check=True)
        marker.touch()
    os.execv(str(py), [str(py), str(Path(script).resolve()), *sys.argv[1:]])
