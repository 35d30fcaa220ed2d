"""Platform settings: environment variables (prefix ``EPDI_``), an optional YAML file, defaults.

Precedence, highest first: keyword arguments, ``EPDI_*`` environment variables, the YAML file
named by ``EPDI_SETTINGS_FILE`` (default ``./epdi.yaml`` when it exists), built-in defaults.

Examples
--------
Switch to MongoDB with GridFS for the big arrays, configuration only::

    # epdi.yaml
    store:
      backend: mongodb
      uri: mongodb://user:pass@db.example.org:27017
      database: epdi
      data_backend: gridfs

One file for the LaunchPad and the store: FireWorks' LaunchPad keys at the top level (``host``,
``port``, ``name``, ``username``, ``password``, ``authsource``, as in a ``my_launchpad.yaml``, so
``lpad -l epdi.yaml`` reads it) and a ``store`` with ``backend: mongodb`` but no server of its own:
the store then uses the LaunchPad's server and credentials (its own ``database``, default ``epdi``)::

    host: db.example.org
    port: 27017
    name: fireworks
    username: epdi
    password: ...
    authsource: admin
    store: {backend: mongodb, database: epdi, data_backend: gridfs}

"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from stores.errors import InputError
from stores.validation import read_text_file, validation_message

SETTINGS_FILE_ENV = "EPDI_SETTINGS_FILE"
#: store fields and the FireWorks LaunchPad keys they take when the store names no server
LAUNCHPAD_CREDENTIALS = (
    ("port", "port"),
    ("username", "username"),
    ("password", "password"),
    ("auth_source", "authsource"),
)
DEFAULT_SETTINGS_FILE = "epdi.yaml"


class SettingsError(InputError):
    """The settings file or an ``EPDI_*`` variable is missing or invalid."""


class StoreSettings(BaseModel):
    """Where documents and big arrays live.

    ``backend="embedded"`` keeps everything in maggma ``MontyStore`` collections (montydb, sqlite
    engine) under the data folder: no server, readable from a second process. ``backend="mongodb"``
    uses a MongoDB server for documents and GridFS or S3 for the ``data`` store.
    """

    backend: Literal["embedded", "mongodb"] = "embedded"
    database: str = "epdi"
    uri: str | None = Field(None, description="mongodb:// or mongodb+srv:// URI (mongodb backend)")
    host: str = "localhost"
    port: int = Field(27017, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    auth_source: str = "admin"
    data_backend: Literal["gridfs", "s3"] = "gridfs"
    s3_bucket: str | None = None
    s3_prefix: str = "epdi"
    s3_endpoint_url: str | None = None
    timeout_s: float = Field(
        10.0, gt=0, le=600, description="Seconds to wait for the MongoDB server before giving up"
    )
    lock_timeout_s: float = Field(
        600.0, gt=0, description="Embedded store: how long to wait for another process's lock (s)"
    )
    reserve_kb: int = Field(
        4096,
        ge=0,
        description="Embedded store: reserve file freed to roll a write back on a full disk (KiB; 0: none)",
    )


#: the sub-folders of ``Settings.data_dir``, one name for each kind of output (:meth:`Settings.folder`)
DATA_FOLDERS: dict[str, str] = {
    "store": "the embedded document store (JSON collections, grids and arrays)",
    "calcs": "engine logs, progress files and VASP job folders, per surface",
    "checkpoints": "training checkpoints, per campaign round or model",
    "models": "exported models",
    "reports": "HTML reports, per campaign",
    "datasets": "dataset archives, per campaign",
    "profiles": "energy-profile plots",
    "analysis": "MEP analyses",
    "surfaces": "POSCAR and sites.json of built surfaces",
    "bench": "benchmark reports and plots",
    "weights": "the pretrained CNN weights cache (unless EPDI_WEIGHTS_DIR)",
    "fireworks": "the embedded FireWorks LaunchPad and its launch folders",
}


def data_folder(data_dir: Path | str, kind: str, *parts: str | Path) -> Path:
    """``data_dir / kind / parts...`` for ``kind`` one of :data:`DATA_FOLDERS`."""
    if kind not in DATA_FOLDERS:
        raise ValueError(f"no data folder {kind!r}; the data folder holds {', '.join(DATA_FOLDERS)}")
    return Path(data_dir).joinpath(kind, *parts)


class Settings(BaseSettings):
    """All platform settings.

    Nested values can be set from the environment with a double underscore, e.g.
    ``EPDI_STORE__BACKEND=mongodb`` or ``EPDI_STORE__URI=mongodb://...``.
    """

    model_config = SettingsConfigDict(env_prefix="EPDI_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("epdi-data"), description="Folder for the embedded store and outputs")
    hosts_file: Path | None = Field(
        None, description="YAML table of host monolayers that extends/overrides the built-in one"
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    weights_dir: Path | None = Field(
        None, description="Pretrained CNN weights cache (EPDI_WEIGHTS_DIR); default <data_dir>/weights"
    )
    archive_max_mb: float = Field(
        500.0,
        gt=0,
        description="Largest expanded size (MB) of a dataset archive `epdi dataset load` accepts "
        "(EPDI_ARCHIVE_MAX_MB); checked before anything is extracted",
    )
    launchpad_file: Path | None = Field(
        None,
        description="FireWorks my_launchpad.yaml (MongoDB LaunchPad, EPDI_LAUNCHPAD_FILE); "
        "default: the embedded one in <data_dir>/fireworks",
    )

    @model_validator(mode="before")
    @classmethod
    def _store_on_the_launchpad_server(cls, data: Any) -> Any:
        """A settings file that is also the LaunchPad file: a MongoDB store without a server takes its."""
        if not isinstance(data, dict) or "host" not in data or not isinstance(data.get("store"), dict):
            return data
        store = dict(data["store"])
        if store.get("backend") != "mongodb" or "host" in store or "uri" in store:
            return data
        if data.get("uri_mode"):
            store["uri"] = data["host"]
        else:
            store["host"] = data["host"]
            for mine, launchpad_key in LAUNCHPAD_CREDENTIALS:
                if mine not in store and data.get(launchpad_key) is not None:
                    store[mine] = data[launchpad_key]
        return data | {"store": store}

    def folder(self, kind: str, *parts: str | Path) -> Path:
        """``data_dir / kind / parts...``: where outputs of ``kind`` (a key of :data:`DATA_FOLDERS`) go."""
        return data_folder(self.data_dir, kind, *parts)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """The data folder as an absolute path; a file there (or above it) is refused."""
        value = value.expanduser().resolve()
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} is a file, not a folder; give a folder for the store and outputs")
        for parent in value.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ValueError(f"{value} cannot be created: {parent} is a file, not a folder")
                break
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Insert the YAML file between the environment and the defaults."""
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=settings_file()),
        )


def settings_file() -> Path | None:
    """Return the YAML settings file in force, or ``None`` when there is none."""
    explicit = os.environ.get(SETTINGS_FILE_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(
                f"{SETTINGS_FILE_ENV}={explicit} does not exist; create it or unset the variable"
            )
        _check_yaml(path)
        return path
    default = Path(DEFAULT_SETTINGS_FILE)
    if default.is_file():
        _check_yaml(default)
        return default
    return None


def _check_yaml(path: Path) -> None:
    try:
        content: Any = yaml.safe_load(read_text_file(path, "settings file"))
    except InputError as exc:
        raise SettingsError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"settings file {path} is not valid YAML: {exc}") from None
    if content is not None and not isinstance(content, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of setting names to values")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(f"invalid setting {validation_message(exc)}") from None
    except SourceError as exc:  # an EPDI_* variable pydantic-settings could not parse
        found = re.search(r'field "([^"]+)"', str(exc))
        field = found.group(1) if found else "?"
        raise SettingsError(
            f"EPDI_{field.upper()} is not valid JSON ({exc.__cause__ or exc}); give a JSON object such as "
            f'\'{{"backend": "mongodb"}}\', or set single fields as EPDI_{field.upper()}__NAME'
        ) from None
