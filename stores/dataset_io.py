"""Export a dataset (documents + the arrays they reference) to one archive, and load it into any store.

The archive is a gzipped tar holding ``manifest.json``, one JSON-lines file per collection and one
file per data-store blob (its zlib-compressed bytes as stored). Loading upserts every document by
its deterministic key and writes every blob, so loading twice changes nothing and an archive made
on the embedded store loads into MongoDB/GridFS unchanged. An archive is loaded as one unit (all or
nothing), and one that expands past ``archive_max_mb`` is refused before anything is extracted.

A *compact* archive (``compact=True``, the form the packaged reference dataset ships in) leaves out
what can be recomputed from what it keeps: the 3D potential/density grids of the statics (the
documents keep their shape and SHA-256), the fragment stacks and RGB images (cut again from the
stored potential maps on load, see :func:`epdi_ml.fragments.build.rebuild_fragments`) and the
colour scale. The manifest lists them under ``omitted``.

An archive may also carry a few plain files beside the documents (``files/<relative path>``, listed
under ``files`` in the manifest): the partial archives of ``epdi dataset generate`` keep a running
CINEB's progress file there, so that the run resumes on another machine (:func:`read_files`).
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from stores.arrays import put_blobs
from stores.errors import InputError
from stores.facade import StoreFacade
from stores.schemas.surfaces import COLLECTIONS
from stores.validation import validation_message

FORMAT = "epdi-dataset/1"

#: collections that make up a dataset, and whether they carry ``surface_id``
DATASET_COLLECTIONS: dict[str, bool] = {
    "surfaces": True,
    "sites": True,
    "hops": True,
    "calculations": True,
    "li_references": False,
    "valleys": True,
    "nebs": True,
    "potential_maps": True,
    "fragments": True,
    "colour_scales": False,
}

#: document fields holding references to data-store blobs
_BLOB_FIELDS = ("potential", "density", "values", "z_iso", "array", "rgb")

#: what a compact archive leaves out: (collection, blob fields) and whole collections
COMPACT_OMITTED_BLOBS = {"calculations": ("potential", "density"), "fragments": ("array", "rgb")}
COMPACT_OMITTED_COLLECTIONS = ("colour_scales",)


class DatasetFormatError(InputError):
    """An archive is not a dataset export, or it is damaged; the message names the file."""


class ArchiveTooLargeError(DatasetFormatError):
    """An archive expands to more than the cap (``archive_max_mb``); refused before extracting."""


def _members_within(tar: tarfile.TarFile, path: Path, max_mb: float) -> dict[str, tarfile.TarInfo]:
    """The archive's members by name, refusing it as soon as their sizes add up past ``max_mb``.

    Only the headers are read, so nothing beyond the cap is ever decompressed or extracted.
    """
    members: dict[str, tarfile.TarInfo] = {}
    expanded = 0
    for member in tar:
        expanded += member.size
        if expanded > max_mb * 1e6:
            raise ArchiveTooLargeError(
                f"{path} ({path.stat().st_size / 1e3:.0f} KB) expands to more than {max_mb:g} MB "
                "(archive_max_mb); refused before extracting anything. If you trust it, raise the cap "
                "with `epdi dataset load --max-expanded-mb N` or EPDI_ARCHIVE_MAX_MB"
            )
        members[member.name] = member
    return members


def _blob_keys(docs: list[dict], skip: tuple[str, ...] = ()) -> set[str]:
    return {
        doc[f]["key"]
        for doc in docs
        for f in _BLOB_FIELDS
        if f not in skip and isinstance(doc.get(f), dict) and "key" in doc[f]
    }


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def export_dataset(
    facade: StoreFacade,
    path: Path,
    surface_ids: list[str] | None = None,
    compact: bool = False,
    files: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """Write the dataset (optionally only ``surface_ids``) to ``path``; return the manifest.

    ``compact`` leaves out the grids, fragment stacks and colour scale (see the module docstring);
    ``files`` (relative path -> bytes) are carried as they are (:func:`read_files`).
    """
    files = files or {}
    for name in files:
        _check_file_name(path, name)
    docs: dict[str, list[dict]] = {}
    for name, per_surface in DATASET_COLLECTIONS.items():
        if compact and name in COMPACT_OMITTED_COLLECTIONS:
            continue
        criteria = {"surface_id": {"$in": surface_ids}} if surface_ids and per_surface else {}
        docs[name] = facade.query(name, criteria)
    skips = COMPACT_OMITTED_BLOBS if compact else {}
    keys = sorted(set().union(*(_blob_keys(d, skips.get(name, ())) for name, d in docs.items())))
    store = facade.data_store()
    store.connect()
    try:
        blobs = {doc["blob_uuid"]: doc for doc in store.query({"blob_uuid": {"$in": keys}})}
    finally:
        store.close()
    missing = sorted(set(keys) - set(blobs))
    if missing:
        raise DatasetFormatError(
            f"{len(missing)} referenced arrays are missing from the data store, e.g. {missing[0]}"
        )
    manifest = {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(),
        "counts": {name: len(d) for name, d in docs.items()},
        "blobs": len(blobs),
        "surface_ids": sorted({d["surface_id"] for d in docs["surfaces"]}),
        "omitted": (
            [f"{name}.{f}" for name, fields in COMPACT_OMITTED_BLOBS.items() for f in fields]
            + list(COMPACT_OMITTED_COLLECTIONS)
            if compact
            else []
        ),
        "files": sorted(files),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        for name, rows in docs.items():
            _add(tar, f"{name}.jsonl", "\n".join(json.dumps(r, default=str) for r in rows).encode())
        for key, blob in blobs.items():
            meta = {k: v for k, v in blob.items() if k not in ("_id", "data")}
            _add(tar, f"blobs/{key}.json", json.dumps(meta).encode())
            _add(tar, f"blobs/{key}.zlib", bytes(blob["data"]))
        for name, payload in sorted(files.items()):
            _add(tar, f"files/{name}", payload)
    return manifest


def _check_file_name(path: Path, name: str) -> None:
    """Refuse a carried file name that is absolute or climbs out of its folder."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        raise DatasetFormatError(
            f"{path}: carried file {name!r} is not a relative path inside the archive's folder"
        )


def read_files(path: Path) -> dict[str, bytes]:
    """The plain files an archive carries (relative path -> bytes); empty for most archives.

    Raises
    ------
    DatasetFormatError
        The archive is damaged, or a carried file name is absolute or contains ``..``.
    """
    try:
        with tarfile.open(path, "r:gz") as tar:
            found = {}
            for member in tar:
                if member.isfile() and member.name.startswith("files/"):
                    name = member.name[len("files/") :]
                    _check_file_name(path, name)
                    found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetFormatError(f"{path} is damaged ({type(exc).__name__}: {exc})") from None
    return found


def load_dataset(facade: StoreFacade, path: Path, max_expanded_mb: float | None = None) -> dict[str, Any]:
    """Load an archive written by :func:`export_dataset` into the store; return its manifest.

    The archive is one unit (:meth:`stores.facade.StoreFacade.unit`): all of it is stored or none.

    Parameters
    ----------
    facade
        Where to load it.
    path
        The ``.tar.gz`` archive.
    max_expanded_mb
        Refuse archives whose files add up to more than this (MB) before extracting anything;
        default: the ``archive_max_mb`` setting.

    Raises
    ------
    ArchiveTooLargeError
        The archive expands past the cap.
    DatasetFormatError
        It is not a dataset export, or it is damaged.
    """
    cap = facade.settings.archive_max_mb if max_expanded_mb is None else max_expanded_mb
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = _members_within(tar, path, cap)
            if "manifest.json" not in members:
                raise DatasetFormatError(f"{path} has no manifest.json: not an EPDI dataset export")
            manifest = json.loads(tar.extractfile(members["manifest.json"]).read())
            _check_manifest(path, manifest)
            rows = {}
            for name in manifest["counts"]:
                text = tar.extractfile(members[f"{name}.jsonl"]).read().decode()
                rows[name] = [json.loads(line) for line in text.splitlines() if line.strip()]
            blobs = []
            for name in members:
                if name.startswith("blobs/") and name.endswith(".json"):
                    meta = json.loads(tar.extractfile(members[name]).read())
                    data = tar.extractfile(members[name[: -len(".json")] + ".zlib"]).read()
                    if not isinstance(meta, dict) or "blob_uuid" not in meta:
                        raise DatasetFormatError(f"{path}: {name} is not a blob description (no blob_uuid)")
                    blobs.append(meta | {"data": data})
    except (tarfile.TarError, OSError, KeyError, json.JSONDecodeError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(
            f"{path} is damaged or not a dataset export ({type(exc).__name__}: {exc})"
        ) from None
    parsed = {name: _parse_rows(path, name, docs) for name, docs in rows.items()}  # all before any write
    with facade.unit():  # the whole archive, or nothing
        put_blobs(facade, blobs)
        for name, docs in parsed.items():
            if DATASET_COLLECTIONS.get(name):  # one bulk replace per collection (montydb scans per upsert)
                facade.replace_groups(name, "surface_id", docs, sorted({d.surface_id for d in docs}))
            else:
                facade.upsert(name, docs)
    return manifest


def _check_manifest(path: Path, manifest: Any) -> None:
    """Raise :class:`DatasetFormatError` unless ``manifest`` is an export's manifest."""
    if not isinstance(manifest, dict):
        raise DatasetFormatError(
            f"{path}: manifest.json holds a {type(manifest).__name__}, not the mapping an export writes"
        )
    if manifest.get("format") != FORMAT:
        raise DatasetFormatError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    counts = manifest.get("counts")
    if not isinstance(counts, dict):
        raise DatasetFormatError(f"{path}: manifest.json has no 'counts' mapping of collections")
    unknown = sorted(set(counts) - set(DATASET_COLLECTIONS))
    if unknown:
        raise DatasetFormatError(
            f"{path}: manifest.json names unknown collection(s) {', '.join(unknown)}; "
            f"known: {', '.join(DATASET_COLLECTIONS)}"
        )


def _parse_rows(path: Path, name: str, docs: list[Any]) -> list[BaseModel]:
    """The rows of one collection as documents; a bad row is named and nothing is written."""
    model = COLLECTIONS[name][0]
    parsed = []
    for number, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict):
            raise DatasetFormatError(f"{path}: {name}.jsonl row {number} is not a JSON object")
        try:
            parsed.append(model(**{k: v for k, v in doc.items() if k != "_id"}))
        except ValidationError as exc:
            raise DatasetFormatError(
                f"{path}: {name}.jsonl row {number} is not a valid {model.__name__} "
                f"({validation_message(exc)[:300]}); nothing was loaded"
            ) from None
    return parsed
