"""README's set-up is what CI runs, and it works from the machine's stock system Python
(which PEP 668 closes to pip): ``.ci/setup`` makes a ``.venv`` from it and installs there."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def readme_commands() -> list[str]:
    """The bash blocks of README.md before its first section: the two set-up commands."""
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", head, re.S)]


def test_readme_commands_are_the_ones_ci_runs():
    app, tests = readme_commands()
    run = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
           if line.strip() and not line.lstrip().startswith("#")]
    assert run[-1] == tests  # CI's last line: exactly README's test command
    setup = "bash .ci/setup && "
    assert tests.startswith(setup) and app.startswith(setup)
    assert app == setup + ".venv/bin/micro3d-gui"
    # a virtual screen large enough for the 1920x1080 window tests
    assert tests == setup + 'xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python -m pytest'


def _copy_checkout(dest: Path) -> None:
    """The files a clone has (tracked and untracked-but-not-ignored), without .venv/.git."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_PYTHON.is_file() or shutil.which("git") is None,
                    reason="needs the system /usr/bin/python3 and git")
@pytest.mark.timeout(1200)
def test_setup_makes_a_venv_from_the_system_python(tmp_path):
    """Runs README's set-up in a copy of the checkout with ``PYTHON=/usr/bin/python3``
    (pip's cache from CI's own set-up makes the installs quick: about 2 to 3 minutes on a
    loaded 2-core machine, docs/benchmarks.md)."""
    repo = tmp_path / "repo"
    _copy_checkout(repo)
    assert not (repo / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH",
                                                           "PYTHONHOME")}
    env["PYTHON"] = str(SYSTEM_PYTHON)
    res = subprocess.run(["bash", ".ci/setup"], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=1100)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    venv_python = repo / ".venv" / "bin" / "python"
    probe = ("import sys, micro3d_gui; print(micro3d_gui.__file__); print(sys.base_prefix); "
             "print(sys.prefix)")
    out = subprocess.run([str(venv_python), "-c", probe], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    package, base_prefix, prefix = out.stdout.split()
    assert Path(package).resolve().is_relative_to(repo.resolve())  # this checkout, editable
    assert Path(prefix).resolve() == (repo / ".venv").resolve()
    real = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.prefix)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert Path(base_prefix).resolve() == Path(real).resolve()  # made from the system Python
    version = subprocess.run([str(repo / ".venv" / "bin" / "micro3d"), "--version"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.startswith("micro3d ")
