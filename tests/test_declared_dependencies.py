"""Every third-party package the platform imports is declared in pyproject.toml, with a range the
installed version satisfies."""

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workflows", "epdi_ml", "stores")


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return {_normal(Requirement(r).name): Requirement(r) for r in listed}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _imported_top_level() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def test_every_imported_package_is_declared():
    declared = set(_requirements())
    providers = importlib.metadata.packages_distributions()
    # click: only the fallback for a typer that does not vendor it
    missing = {
        name: providers.get(name)
        for name in _imported_top_level() - {"click"}
        if not any(_normal(dist) in declared for dist in providers.get(name, [name]))
    }
    assert missing == {}


def test_installed_versions_satisfy_the_declared_ranges():
    outside = {}
    for name, requirement in _requirements().items():
        installed = importlib.metadata.version(name)
        if not requirement.specifier.contains(installed, prereleases=True):
            outside[name] = (str(requirement.specifier), installed)
    assert outside == {}


def test_libraries_whose_internals_are_subclassed_have_an_upper_bound():
    requirements = _requirements()
    for name in ("jobflow", "fireworks", "maggma"):
        assert any(spec.operator == "<" for spec in requirements[name].specifier), name
