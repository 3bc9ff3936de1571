"""README.md's two commands (install and run; test) are the ones CI runs: the ``ci:`` markers,
the extractor that .ci/run and the GitHub workflow call, and what the commands install."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRACTOR = ROOT / ".ci" / "readme_block.py"
TORCH_FIRST = "pip install torch==2.13.0 && "


def readme_block(name: str, readme: Path = ROOT / "README.md") -> subprocess.CompletedProcess:
    """Run .ci/readme_block.py exactly as CI does."""
    return subprocess.run(
        [sys.executable, str(EXTRACTOR), name, str(readme)], capture_output=True, text=True
    )


def command(name: str) -> str:
    result = readme_block(name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def extra_packages(extra: str) -> set[str]:
    """Package names an ``nlbsuite[extra]`` install brings, self-references expanded."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names: set[str] = set()
    for req in groups[extra]:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
        if name == "nlbsuite":
            for inner in re.search(r"\[(.*)\]", req).group(1).split(","):
                names |= extra_packages(inner.strip())
        else:
            names.add(name)
    return names


def installed_extra(cmd: str) -> str:
    found = re.findall(r'pip install -e "\.\[(\w+)\]"', cmd)
    assert len(found) == 1, f"expected one editable install in {cmd!r}"
    return found[0]


@pytest.mark.parametrize("name", ["install-run", "test"])
def test_readme_block_is_a_torch_first_command(name: str) -> None:
    cmd = command(name)
    assert "\n" not in cmd
    # torch pinned and first: any other spec pulls gigabytes of CUDA packages
    assert cmd.startswith(TORCH_FIRST)
    assert re.findall(r"torch\S*", cmd) == ["torch==2.13.0"]


def test_install_run_installs_the_models_and_runs_the_main_job() -> None:
    cmd = command("install-run")
    assert cmd.endswith("&& nlbsuite run")
    assert {"torch", "torchsde", "matplotlib"} <= extra_packages(installed_extra(cmd))


def test_test_command_installs_what_the_tests_need() -> None:
    cmd = command("test")
    assert cmd.endswith("&& python -m pytest")
    packages = extra_packages(installed_extra(cmd))
    assert {"pytest", "hypothesis", "ruff"} <= packages
    assert extra_packages("models") <= packages  # the model tests import torch, torchsde


def test_ci_runs_the_readme_commands() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "python3 .ci/readme_block.py" in run
    for name in ("install-run", "test"):
        assert re.search(rf"^[^#\n]*readme_command {name} ", run, re.M), name
    assert re.search(r"^\S*ruff check", run, re.M) and re.search(r"^bash .ci/oracle", run, re.M)
    workflow = (ROOT / ".github" / "workflows" / "benchmark.yml").read_text()
    for name in ("install-run", "test"):
        assert f"command=$(python3 .ci/readme_block.py {name})" in workflow, name
    assert workflow.count('bash -euo pipefail -c "$command"') == 2
    assert "run: bash .ci/oracle" in workflow
    # the workflow's one difference: CPU torch from PyTorch's index, before the README commands
    installs = re.findall(r"^[^#\n]*?(pip install .*)", workflow, re.M)
    assert installs == [
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("# nothing here\n", "found it 0 times"),
        ("<!-- ci: x -->\n```\na\n```\n<!-- ci: x -->\n```\nb\n```\n", "found it 2 times"),
        ("<!-- ci: x -->\nrun me\n", "must be followed by a ``` fenced block"),
        ("<!-- ci: x -->\n```bash\n\n```\n", "is empty"),
        ("<!-- ci: x -->\n```bash\na && b\n", "no closing"),
    ],
)
def test_extractor_refuses_an_unclear_block(tmp_path: Path, text: str, error: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text)
    result = readme_block("x", readme)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and error in result.stderr


def test_extractor_prints_the_block_verbatim(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text('intro\n<!-- ci: x -->\n\n```bash\npip install "a[b]" && c --d\n```\nend\n')
    result = readme_block("x", readme)
    assert result.returncode == 0 and result.stdout == 'pip install "a[b]" && c --d\n'


def test_use_from_python_section_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README's "Use from Python" example, run as a doctest (printed values included)."""
    import doctest

    text = (ROOT / "README.md").read_text()
    start = text.index("## Use from Python")
    section = text[start : text.index("\n## ", start + 1)]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLBSUITE_CACHE", str(tmp_path / "cache"))
    test = doctest.DocTestParser().get_doctest(section, {}, "README: Use from Python", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.tries >= 15 and runner.failures == 0


def test_workflow_runs_the_seed_models_ci_presets() -> None:
    """The workflow's seed-model step names registered models that have a ``ci`` preset."""
    from nlbsuite.registry import get_model_class

    workflow = (ROOT / ".github" / "workflows" / "benchmark.yml").read_text()
    loop = re.search(r"for model in ([\w ]+); do\n\s+nlbsuite run --model \"\$model\" --preset ci", workflow)
    assert loop is not None
    models = loop.group(1).split()
    assert models == ["langevin_flow", "latent_sde", "lowrank_rnn"]
    for name in models:
        assert "ci" in get_model_class(name).presets, name
