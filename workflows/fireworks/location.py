"""Where the FireWorks LaunchPad is: one file read alike by ``epdi``, ``lpad``/``qlaunch`` and the workers.

A LaunchPad is named by a FireWorks LaunchPad file (``my_launchpad.yaml``: ``host``, ``port``,
``name``, ``username``, ``password``, ...). Highest priority first:

1. an explicit file (``--launchpad FILE`` on the CLI);
2. ``EPDI_LAUNCHPAD_FILE`` (or ``launchpad_file`` in the settings);
3. the settings file itself (``EPDI_SETTINGS_FILE``) when it has the LaunchPad keys at the top level:
   then one file holds the LaunchPad and the store credentials (``store`` takes the LaunchPad's
   server and credentials unless it names its own, see :mod:`stores.settings`), and ``lpad -l``,
   ``qlaunch -l`` read that same file (FireWorks ignores the platform's keys);
4. FireWorks' own ``FW_CONFIG_FILE``: its ``LAUNCHPAD_LOC`` (or a legacy ``MONGOMOCK_SERVERSTORE_FILE``);
5. the embedded default, ``<data_dir>/fireworks/launchpad.json``, with no server.

A LaunchPad file whose ``host`` is ``embedded:///abs/path/launchpad.json`` names an embedded
LaunchPad (see :mod:`workflows.fireworks.embedded_mongo`). :func:`prepare_embedded` writes such a file and a
``FW_config.yaml`` beside the JSON file, so that FireWorks' tools share it with ``epdi``::

    export FW_CONFIG_FILE=<data_dir>/fireworks/FW_config.yaml
    lpad get_wflows            # or: lpad -l <data_dir>/fireworks/my_launchpad.yaml get_wflows
    qlaunch -w deploy/my_fworker_dft.yaml -q deploy/my_qadapter_slurm.yaml rapidfire
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from stores.errors import EpdiError
from stores.settings import Settings, get_settings, settings_file
from stores.validation import one_line, read_text_file
from workflows.fireworks.embedded_mongo import embedded_host, embedded_path

#: folder of the embedded LaunchPad inside the data folder
FIREWORKS_FOLDER = "fireworks"
#: environment variable naming a LaunchPad file
LAUNCHPAD_FILE_ENV = "EPDI_LAUNCHPAD_FILE"
#: database name of the embedded LaunchPad
EMBEDDED_DB = "fireworks"
#: what ``FW_config.yaml`` sets so that FireWorks' tools open embedded LaunchPads with our client
FW_CONFIG_CLIENT = {"@module": "workflows.fireworks.embedded_mongo", "@callable": "mongo_client"}


class LaunchPadError(EpdiError, RuntimeError):
    """The LaunchPad is missing, not initialised or unreachable (message says what to do)."""


@dataclass(frozen=True)
class LaunchPadConfig:
    """Which LaunchPad to use.

    Attributes
    ----------
    kind
        ``embedded`` (one JSON file) or ``mongodb`` (a LaunchPad file naming a server).
    path
        The JSON file (embedded) or the LaunchPad file (mongodb).
    source
        Where the choice came from, for messages.
    """

    kind: Literal["embedded", "mongodb"]
    path: Path
    source: str

    @property
    def lock_path(self) -> Path:
        """The lock file of an embedded LaunchPad (``launchpad.lock`` beside ``launchpad.json``)."""
        return self.path.with_suffix(".lock")

    def describe(self) -> str:
        """One line naming the LaunchPad."""
        what = "embedded LaunchPad" if self.kind == "embedded" else "MongoDB LaunchPad"
        return f"{what} {self.path} (from {self.source})"


def embedded_folder(settings: Settings | None = None) -> Path:
    """``<data_dir>/fireworks``: the embedded LaunchPad and its FireWorks configuration."""
    return (settings or get_settings()).folder(FIREWORKS_FOLDER)


def resolve_launchpad(
    launchpad_file: Path | None = None, settings: Settings | None = None
) -> LaunchPadConfig:
    """Find the LaunchPad to use (see the module docstring for the order)."""
    settings = settings or get_settings()
    if launchpad_file is not None:
        return from_launchpad_file(Path(launchpad_file), "--launchpad")
    configured = settings.launchpad_file or os.environ.get(LAUNCHPAD_FILE_ENV)
    if configured:
        return from_launchpad_file(Path(configured), LAUNCHPAD_FILE_ENV)
    own = settings_file()
    if own is not None and "host" in _mapping(own):
        return from_launchpad_file(own, f"the settings file {own}")
    fw_config = os.environ.get("FW_CONFIG_FILE")
    if fw_config and Path(fw_config).is_file():
        content = _mapping(Path(fw_config))
        source = f"FW_CONFIG_FILE={fw_config}"
        if content.get("LAUNCHPAD_LOC"):
            return from_launchpad_file(Path(content["LAUNCHPAD_LOC"]), source)
        if content.get("MONGOMOCK_SERVERSTORE_FILE"):
            path = Path(content["MONGOMOCK_SERVERSTORE_FILE"]).expanduser().resolve()
            return LaunchPadConfig("embedded", path, source)
    return LaunchPadConfig("embedded", embedded_folder(settings) / "launchpad.json", "the data folder")


def _mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping of a FireWorks file; unreadable, binary or broken files are named in one line."""
    try:
        content = yaml.safe_load(read_text_file(path, "LaunchPad file")) or {}
    except yaml.YAMLError as exc:
        raise LaunchPadError(f"{path} is not valid YAML: {one_line(str(exc))}") from None
    if not isinstance(content, dict):
        raise LaunchPadError(f"{path} must be a mapping (a FireWorks LaunchPad file, see deploy/)")
    return content


def from_launchpad_file(path: Path, source: str) -> LaunchPadConfig:
    """The LaunchPad a FireWorks LaunchPad file names (embedded for an ``embedded://`` host)."""
    path = path.expanduser()
    if not path.is_file():
        raise LaunchPadError(
            f"LaunchPad file {path} (from {source}) does not exist; write one as in deploy/epdi-mongodb.yaml"
        )
    content = _mapping(path)
    if "host" not in content:
        raise LaunchPadError(f"{path} (from {source}) has no 'host'; see deploy/epdi-mongodb.yaml")
    embedded = embedded_path(content["host"])
    if embedded is not None:
        return LaunchPadConfig("embedded", embedded, f"{source}: {path}")
    return LaunchPadConfig("mongodb", path.resolve(), source)


def launchpad_file_content(config: LaunchPadConfig) -> dict[str, Any]:
    """The LaunchPad keys of a MongoDB LaunchPad file (the platform's keys beside them dropped)."""
    content = _mapping(config.path)
    return {k: v for k, v in content.items() if k not in Settings.model_fields}


def prepare_embedded(path: Path) -> Path:
    """Create the embedded LaunchPad file (``{}``) and FireWorks' files beside it; return ``path``.

    ``my_launchpad.yaml`` names it (``host: embedded://<path>``) and ``FW_config.yaml`` points
    FireWorks at that file and at the embedded client (:func:`~.embedded_mongo.mongo_client`),
    so ``lpad``, ``qlaunch`` and ``rlaunch`` with ``FW_CONFIG_FILE=<folder>/FW_config.yaml`` work on
    the same Fireworks as ``epdi``, under the same lock.
    """
    path = Path(path).resolve()
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("{}")
    launchpad_yaml = folder / "my_launchpad.yaml"
    _write_if_changed(launchpad_yaml, {"host": embedded_host(path), "name": EMBEDDED_DB})
    _write_if_changed(
        folder / "FW_config.yaml",
        {
            "LAUNCHPAD_LOC": str(launchpad_yaml),
            "MongoClient": FW_CONFIG_CLIENT,
            "GRIDFS_FALLBACK_COLLECTION": None,
        },
    )
    return path


def _write_if_changed(path: Path, content: dict[str, Any]) -> None:
    text = yaml.safe_dump(content, sort_keys=False)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
