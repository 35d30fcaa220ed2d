"""The ``epdi`` front door: a light start, --version, --data-dir, -v/-q, third-party warnings."""

import importlib.metadata
import json
import logging
import subprocess
import sys
import warnings

import pytest
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import COMMANDS, app
from workflows.cli.output import filter_third_party_warnings

runner = CliRunner()

HEAVY = ("torch", "torchvision", "chgnet", "gpaw", "atomate2", "custodian")


def _loaded_after(code: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    probe = f"import sys; {code}; print(__import__('json').dumps([m for m in {names!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_package():
    assert _loaded_after("import workflows.cli.app") == []


def test_root_help_lists_every_command_and_loads_no_heavy_package():
    code = (
        "from typer.testing import CliRunner; from workflows.cli.app import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'quickstart' in r.stdout and 'fragments' in r.stdout"
    )
    assert _loaded_after(code) == []


def test_campaign_help_loads_no_model_or_engine_package():
    """`epdi campaign --help` (and the spec's checks) need neither torch nor the engines."""
    code = (
        "from typer.testing import CliRunner; from workflows.cli.app import app; "
        "r = CliRunner().invoke(app, ['campaign', '--help']); assert r.exit_code == 0, r.output; "
        "import workflows.flows.campaign_spec"
    )
    assert _loaded_after(code, ("torch", "torchvision", "chgnet", "atomate2", "custodian")) == []


@pytest.mark.parametrize("group", ["report", "query", "bench", "dataset", "barrier", "hops", "static"])
def test_help_of_a_group_loads_neither_plotting_nor_learning_nor_vasp_packages(group):
    """Groups import their plotting, learning and VASP (atomate2, custodian) code only when a command runs.

    (Their structure code imports ASE, whose calculator-plugin registry imports ``gpaw.ase_plugin``
    when GPAW is installed; that is ASE's doing and light, so gpaw is not in this list.)
    """
    code = (
        "from typer.testing import CliRunner; from workflows.cli.app import app; "
        f"r = CliRunner().invoke(app, [{group!r}, '--help']); assert r.exit_code == 0, r.output"
    )
    not_at_help = ("matplotlib", *(name for name in HEAVY if name != "gpaw"))
    assert _loaded_after(code, not_at_help) == []


def test_a_command_imports_its_module_when_it_runs():
    names = ("workflows.cli.barrier", "workflows.cli.vasp")
    loaded = _loaded_after(
        "from typer.testing import CliRunner; from workflows.cli.app import app; "
        "CliRunner().invoke(app, ['barrier', '--help'])",
        names,
    )
    assert loaded == ["workflows.cli.barrier"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_table_says_what_each_command_says(name):
    command = COMMANDS[name].load(name)
    assert command.name == name
    assert command.get_short_help_str(limit=500) == COMMANDS[name].help


def test_help_of_every_command_and_group_runs():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.stdout
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert f"epdi {name}" in sub.stdout


def test_flags_show_no_value_type_and_still_parse_as_flags():
    pages = [runner.invoke(app, ["--help"]).stdout, runner.invoke(app, ["barrier", "--help"]).stdout]
    pages += [runner.invoke(app, ["query", "hops", "--help"]).stdout]
    assert all("--json" in page or "--verbose" in page for page in pages)
    assert not [page for page in pages if "<bool>" in page]
    assert "<int>" in pages[1]  # options that take a value keep their type
    result = runner.invoke(app, ["query", "hops", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []  # an empty store: the flag took no value


def test_unknown_command_is_one_line_with_a_suggestion():
    result = runner.invoke(app, ["surfces"])
    assert result.exit_code == 2
    assert "No such command 'surfces'" in result.stderr and "'surfaces'" in result.stderr


def test_version_prints_the_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"epdi {importlib.metadata.version('epdi')}\n"


def test_data_dir_option_points_the_command_at_that_folder(tmp_path, data_dir):
    other = tmp_path / "other-data"
    get_settings()  # a cached settings object from EPDI_DATA_DIR must not win
    result = runner.invoke(
        app,
        ["--data-dir", str(other), "surfaces", "build", "MoS2", "--dopant", "Co", "--size", "3", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert get_settings().data_dir == other.resolve()
    assert StoreFacade().count("surfaces", {"host": "MoS2", "dopant": "Co"}) == 1
    assert (other / "store").is_dir()
    assert not (data_dir / "store").exists()


def _fireworks_logger() -> logging.Logger:
    from fireworks.utilities.fw_utilities import get_fw_logger

    return get_fw_logger("rocket.launcher", stream_level="CRITICAL")  # sets its level to DEBUG


def _jobflow_job_logger() -> logging.Logger:
    from jobflow.utils.log import initialize_logger

    initialize_logger(level=logging.INFO)  # as jobflow's JobFiretask does on a worker
    return logging.getLogger("jobflow.core.job")


def _records_after(args: list[str], library_logger) -> list[str]:
    result = runner.invoke(app, [*args, "query", "--help"])
    assert result.exit_code == 0, result.output
    logger = library_logger()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.info("an INFO line")
        logger.warning("a WARNING line")
    finally:
        logger.removeHandler(handler)
    return [r.getMessage() for r in seen]


@pytest.mark.parametrize("library_logger", [_fireworks_logger, _jobflow_job_logger])
def test_quiet_keeps_warnings_only_and_verbose_shows_info(library_logger):
    assert _records_after(["-q"], library_logger) == ["a WARNING line"]
    assert _records_after(["--verbose"], library_logger) == ["an INFO line", "a WARNING line"]
    assert _records_after(["--quiet"], library_logger) == ["a WARNING line"]
    _records_after([], library_logger)  # no flag: the loggers as the libraries set them
    assert library_logger().filters == []


def test_verbose_and_quiet_together_is_bad_input():
    result = runner.invoke(app, ["-v", "-q", "query", "--help"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --verbose and --quiet exclude each other")


def _raise_third_party_warnings() -> None:
    import networkx as nx
    from jobflow.utils.graph import itergraph
    from monty.os import cd

    with cd("."):  # monty's FutureWarning, as inside jobflow's run_locally
        pass
    # torch's UserWarning inside CHGNet; torch raises it once per process (TORCH_WARN_ONCE), so after
    # an earlier test it is silent: raise the same message and category the way torch does
    warnings.warn(
        "Converting a tensor with requires_grad=True to a scalar may lead to unexpected behavior.\n"
        "Consider using tensor.detach() first.",
        UserWarning,
        stacklevel=1,
    )
    graph = nx.DiGraph()
    graph.add_nodes_from(["a", "b"])
    list(itergraph(graph))  # jobflow's UserWarning for jobs that do not depend on each other
    warnings.warn("a warning of our own", UserWarning, stacklevel=1)


def test_third_party_warnings_are_filtered_by_message_and_category():
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        _raise_third_party_warnings()
    assert len(before) == 4, [str(w.message) for w in before]
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        filter_third_party_warnings()
        _raise_third_party_warnings()
    assert [str(w.message) for w in after] == ["a warning of our own"]


def test_the_console_entry_filters_them_and_the_import_does_not():
    code = (
        "import sys, warnings; from workflows.cli import app as a; from monty.os import cd\n"
        "with cd('.'): pass\n"
        "sys.argv = ['epdi', '--version']\n"
        "try:\n    a.main()\nexcept SystemExit:\n    pass\n"
        "with cd('.'): pass\n"
    )
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("epdi ")
    assert proc.stderr.count("cd is deprecated") == 1  # before main() only
