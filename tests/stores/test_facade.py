import json
import subprocess
import sys

from jobflow import JobStore
from maggma.stores import GridFSStore, MemoryStore, MongoStore, MontyStore, S3Store

from stores.facade import StoreFacade, ensure_indexes
from stores.schemas.surfaces import COLLECTIONS
from stores.settings import Settings, StoreSettings
from workflows.structures.hosts import get_host
from workflows.structures.surfaces import describe_surface, store_surfaces


def test_embedded_store_round_trip_and_idempotent_rebuild(data_dir):
    facade = StoreFacade()
    bundle = describe_surface(get_host("MoS2"), "Co", size=3)
    store_surfaces([bundle], facade)
    store_surfaces([describe_surface(get_host("MoS2"), "Co", size=3)], facade)
    assert facade.count("surfaces") == 1
    assert facade.count("sites") == 18 + 27
    assert facade.count("hops") == 27
    (doc,) = facade.query("surfaces")
    assert doc["surface_id"] == bundle.surface.surface_id
    assert doc["formula"] == "Mo8 Co1 S18"
    assert (data_dir / "store").is_dir()

    # a second process sees the same documents
    code = (
        "import json; from stores.facade import StoreFacade; f = StoreFacade(); "
        "print(json.dumps([f.count('surfaces'), f.count('sites'), f.count('hops')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [1, 45, 27]


def test_job_store_is_embedded_with_a_data_store():
    store = StoreFacade().job_store()
    assert isinstance(store, JobStore)
    assert isinstance(store.docs_store, MontyStore)
    assert isinstance(store.additional_stores["data"], MontyStore)
    store.connect()
    store.update({"uuid": "u1", "index": 1, "output": {"x": 1}, "metadata": {}})
    assert store.query_one({"uuid": "u1"})["output"] == {"x": 1}
    store.close()


def test_production_backends_are_configuration_only(tmp_path):
    mongo = StoreFacade(
        Settings(data_dir=tmp_path, store=StoreSettings(backend="mongodb", uri="mongodb://db:27017"))
    )
    assert isinstance(mongo.docs_store("surfaces"), MongoStore)
    assert isinstance(mongo.data_store(), GridFSStore)
    s3 = StoreFacade(
        Settings(data_dir=tmp_path, store=StoreSettings(backend="mongodb", data_backend="s3", s3_bucket="b"))
    )
    data = s3.data_store()
    assert isinstance(data, S3Store) and data.bucket == "b"


def test_indexes_are_created_on_a_mongo_like_store():
    for name, (_, key, indexed) in COLLECTIONS.items():
        store = MemoryStore(name, key=key)
        store.connect()
        assert ensure_indexes(store, name)
        names = set(store._collection.index_information())
        assert {f"{field}_1" for field in (key, *indexed)} <= names
