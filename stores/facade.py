"""The store facade: maggma stores for the platform's collections and a jobflow ``JobStore``.

Embedded default: :class:`stores.embedded.EmbeddedStore` collections (maggma ``MontyStore``,
montydb's sqlite engine) in ``<data_dir>/store``; nothing to install or start, and several processes
may read and write one data folder at once. Production: MongoDB (``MongoStore``/``MongoURIStore``)
for documents, GridFS or S3 for the ``data`` store. Switching is configuration only
(:class:`stores.settings.StoreSettings`).

Units: the writes made inside :meth:`StoreFacade.unit` (a surface with its sites and hops, an
archive, a job's documents and blobs) are all or nothing on the embedded store; see
:mod:`stores.store_lock`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobflow import CURRENT_JOB, JobConfig, JobStore
from maggma.core import Store
from maggma.stores import GridFSStore, MongoStore, S3Store
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure

from stores.embedded import EmbeddedStore, UnitJobStore
from stores.errors import InputError, RunError
from stores.schemas.surfaces import COLLECTIONS
from stores.settings import Settings, get_settings
from stores.store_lock import store_lock
from stores.validation import make_dir

#: jobflow's outputs collection and the collection behind the ``data`` additional store
OUTPUTS_COLLECTION = "outputs"
DATA_COLLECTION = "outputs_data"


class StoreUnreachable(RunError):
    """The MongoDB server of the store did not answer in time; the message names it and the settings."""


def _without_credentials(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//", uri)


def store_unreachable(exc: Exception, settings: Settings | None = None) -> StoreUnreachable:
    """Translate pymongo's connection error (with its topology dump) into one line naming the server."""
    cfg = (settings or get_settings()).store
    where = _without_credentials(cfg.uri) if cfg.uri else f"{cfg.host}:{cfg.port}"
    reason = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0][:200]
    check = "store.uri" if cfg.uri else "store.host / store.port"
    return StoreUnreachable(
        f"cannot reach MongoDB at {where} within {cfg.timeout_s:g} s ({type(exc).__name__}: {reason}); "
        f"check {check} in the settings (EPDI_STORE__...) and that the server runs, or use "
        "store.backend: embedded"
    )


def ensure_indexes(store: Store, name: str) -> bool:
    """Create the key and query indexes of collection ``name`` on a connected store.

    montydb (the embedded engine) has no secondary indexes and scans instead, which is fast at
    campaign scale; there this returns ``False``. MongoDB gets every index (returns ``True``).
    """
    _, key, indexed = COLLECTIONS[name]
    try:
        for field in (key, *indexed):
            store.ensure_index(field, unique=field == key)
    except NotImplementedError:
        return False
    return True


class StoreFacade:
    """Hands out maggma stores and a jobflow ``JobStore`` built from the settings.

    Parameters
    ----------
    settings
        Platform settings; default: :func:`stores.settings.get_settings`.

    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    @property
    def store_dir(self) -> Path:
        """Folder of the embedded store: ``<data_dir>/store``."""
        return self.settings.folder("store")

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Make every write inside one all-or-nothing unit on the embedded store.

        The unit holds the store's exclusive lock, so keep long computations outside it: compute
        first, then write. Reads inside see the unit's own writes; a unit inside a unit joins it.
        If the block raises (or its process dies) nothing it wrote stays. On MongoDB each document
        write stays atomic on its own.

        Examples
        --------
        >>> with facade.unit():  # doctest: +SKIP
        ...     refs = put_arrays(facade, arrays)
        ...     facade.upsert("fragments", docs)
        """
        cfg = self.settings.store
        if cfg.backend != "embedded":
            yield
            return
        with store_lock(self.store_dir, cfg.lock_timeout_s, cfg.reserve_kb).unit():
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Hold the embedded store's shared lock: the reads inside see one state, no unit between.

        Writers wait meanwhile, so keep it short. A no-op on MongoDB.
        """
        cfg = self.settings.store
        if cfg.backend != "embedded":
            yield
            return
        with store_lock(self.store_dir, cfg.lock_timeout_s, cfg.reserve_kb).hold("shared"):
            yield

    # -- raw stores ------------------------------------------------------------------------
    def docs_store(self, collection: str, key: str = "task_id") -> Store:
        """An unconnected maggma store for ``collection`` (documents keyed by ``key``)."""
        cfg = self.settings.store
        if cfg.backend == "embedded":
            return EmbeddedStore(
                collection,
                database_path=str(make_dir(self.store_dir, "store folder")),
                database_name=cfg.database,
                key=key,
                lock_timeout_s=cfg.lock_timeout_s,
                reserve_kb=cfg.reserve_kb,
            )
        return MongoStore(collection_name=collection, key=key, **self._mongo_connection())

    def _mongo_connection(self) -> dict[str, Any]:
        """Server, database and credentials shared by the MongoDB and GridFS stores."""
        cfg = self.settings.store
        timeout_ms = int(cfg.timeout_s * 1000)
        return {
            "mongoclient_kwargs": {"serverSelectionTimeoutMS": timeout_ms, "connectTimeoutMS": timeout_ms},
            "database": cfg.database,
            "host": cfg.host,
            "port": cfg.port,
            "username": cfg.username or "",
            "password": cfg.password or "",
            "auth_source": cfg.auth_source,
            "uri": cfg.uri,
        }

    def data_store(self) -> Store:
        """An unconnected maggma store for big arrays (the jobflow ``data`` store)."""
        cfg = self.settings.store
        if cfg.backend == "embedded":
            return self.docs_store(DATA_COLLECTION, key="blob_uuid")
        if cfg.data_backend == "s3":
            if not cfg.s3_bucket:
                raise InputError(
                    "store.data_backend is 's3' but store.s3_bucket is not set; set it or use gridfs"
                )
            return S3Store(
                index=self.docs_store(f"{DATA_COLLECTION}_index", key="blob_uuid"),
                bucket=cfg.s3_bucket,
                sub_dir=cfg.s3_prefix,
                endpoint_url=cfg.s3_endpoint_url,
                key="blob_uuid",
            )
        return GridFSStore(collection_name=DATA_COLLECTION, **self._mongo_connection())

    def job_store(self) -> JobStore:
        """The jobflow ``JobStore``: outputs collection plus the ``data`` additional store."""
        data = {"data": self.data_store()}
        store = UnitJobStore(self.docs_store(OUTPUTS_COLLECTION), additional_stores=data)
        store.platform_settings = self.settings  # read back by job_facade() inside the jobs it runs
        return store

    # -- platform collections ----------------------------------------------------------------
    @contextmanager
    def collection(self, name: str) -> Iterator[Store]:
        """Connect to one of the platform collections (see :data:`stores.schemas.surfaces.COLLECTIONS`).

        Raises
        ------
        StoreUnreachable
            The MongoDB server did not answer within ``store.timeout_s``.
        """
        if name not in COLLECTIONS:
            raise KeyError(f"unknown collection {name!r}; known: {', '.join(COLLECTIONS)}")
        _, key, _ = COLLECTIONS[name]
        store = self.docs_store(name, key=key)
        try:
            store.connect()
            try:
                yield store
            finally:
                store.close()
        except ConnectionFailure as exc:
            raise store_unreachable(exc, self.settings) from None

    def upsert(self, name: str, docs: Iterable[BaseModel]) -> int:
        """Insert or update documents by their deterministic key; return how many were written."""
        _, key, indexed = COLLECTIONS[name]
        payload = [doc.model_dump(mode="json") for doc in docs]
        if not payload:
            return 0
        with self.collection(name) as store:
            ensure_indexes(store, name)
            store.update(payload, key=key)
        return len(payload)

    def replace_groups(
        self,
        name: str,
        group_field: str,
        docs: Iterable[BaseModel],
        groups: Iterable[str],
        within: dict[str, Any] | None = None,
    ) -> int:
        """Replace every document whose ``group_field`` is in ``groups`` by ``docs``, as one unit.

        Used for the sites and hops of whole surfaces: one delete and one bulk insert. Ids stay
        deterministic, so rebuilding a surface leaves exactly one document per site. ``within``
        narrows what is replaced (e.g. one colour scale's fragments of a surface).
        """
        payload = [doc.model_dump(mode="json") for doc in docs]
        criteria = {group_field: {"$in": list(groups)}} | (within or {})
        with self.collection(name) as store, self.unit():
            ensure_indexes(store, name)
            if isinstance(store, EmbeddedStore):
                store.replace(criteria, payload)
                return len(payload)
            store.remove_docs(criteria)
            if payload:  # maggma's Store.update upserts one by one; pymongo's collection bulk-inserts
                store._collection.insert_many(payload)
        return len(payload)

    def query(
        self,
        name: str,
        criteria: dict[str, Any] | None = None,
        properties: list[str] | None = None,
        sort: dict[str, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the documents of ``name`` matching ``criteria`` (without Mongo's ``_id``)."""
        with self.collection(name) as store:
            docs = list(store.query(criteria=criteria or {}, properties=properties, sort=sort))
        for doc in docs:
            doc.pop("_id", None)
        return docs

    def count(self, name: str, criteria: dict[str, Any] | None = None) -> int:
        """Number of documents of ``name`` matching ``criteria``."""
        with self.collection(name) as store:
            return store.count(criteria or {})

    def remove(self, name: str, criteria: dict[str, Any]) -> None:
        """Remove the documents of ``name`` matching ``criteria``."""
        with self.collection(name) as store:
            store.remove_docs(criteria)


#: jobflow config of every platform job: the JobStore it runs with is exposed in ``CURRENT_JOB``,
#: so that :func:`job_facade` finds the settings the flow was started with
STORE_ACCESS = JobConfig(expose_store=True)


def job_facade() -> StoreFacade:
    """The store facade of the running job: the settings of the JobStore the flow runs with.

    Settings are passed once, with the ``JobStore`` given to ``run_locally`` (or FireWorks'
    ``JobFiretask``) from :meth:`StoreFacade.job_store`; a job declared with
    ``@job(config=STORE_ACCESS)`` reads them from ``CURRENT_JOB.store``. Outside a job, or with a
    ``JobStore`` made elsewhere, the settings come from the environment (:func:`get_settings`).
    """
    settings = getattr(CURRENT_JOB.store, "platform_settings", None)
    return StoreFacade(settings)
