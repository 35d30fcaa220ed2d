"""The model registry: fold ensembles with versions, stored weights and a current model per name."""

from __future__ import annotations

import pickle
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from epdi_ml.training.ensemble import EnsembleResult
from stores.arrays import GridIntegrityError, get_array, put_array
from stores.errors import InputError, RunError
from stores.facade import StoreFacade
from stores.ids import stable_id
from stores.schemas.fields import ArrayRef
from stores.schemas.models import ModelDoc

DEFAULT_REGISTRY_NAME = "epdi"


class NoModel(InputError, LookupError):
    """No trained model is registered under the name."""


class DamagedModel(RunError):
    """A registered model's weights are missing from the data store or cannot be read."""


def code_version() -> str:
    """Installed version of the platform (``epdi`` distribution)."""
    try:
        return version("epdi")
    except PackageNotFoundError:  # running from a source tree without installing
        return "unknown"


def _ensemble_bytes(result: EnsembleResult) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = result.save(Path(tmp) / "ensemble.pt")
        return path.read_bytes()


def register(
    facade: StoreFacade,
    result: EnsembleResult,
    *,
    name: str = DEFAULT_REGISTRY_NAME,
    dataset: str,
    fraction: float | None,
    train_site_ids: list[str],
    test_site_ids: list[str],
    n_labels: int,
    device: str,
    promote_first: bool = True,
    label_source: str | None = None,
) -> ModelDoc:
    """Store the ensemble's weights and register it as the next version of ``name``.

    The first version of a name becomes ``current``; later ones are ``candidate`` until promoted.
    """
    with facade.unit():  # the next version number, the weights and the document, or nothing
        existing = facade.query("models", {"name": name}, properties=["version"])
        next_version = 1 + max((d["version"] for d in existing), default=0)
        blob = np.frombuffer(_ensemble_bytes(result), dtype=np.uint8)
        summary = result.summary()
        folds = result.folds
        doc = ModelDoc(
            model_id=stable_id("model", name=name, version=next_version),
            name=name,
            version=next_version,
            status="current" if promote_first and not existing else "candidate",
            architecture=result.config.model,
            dataset=dataset,
            label_source=label_source,
            weights=put_array(facade, blob, "torch.save"),
            config=summary["config"],
            fraction=fraction,
            n_train=len(train_site_ids),
            n_test=len(test_site_ids),
            train_site_ids=train_site_ids,
            test_site_ids=test_site_ids,
            val_mae_ev=[float(v) for v in result.val_mae_ev],
            cv_mae_ev=float(np.mean(result.val_mae_ev)),
            test_mae_ev=result.test_mae_ev,
            best_epochs=[int(e) for e in result.best_epochs],
            curves={
                "train_loss_ev": [f.train_loss_ev for f in folds],
                "val_mae_ev": [f.val_mae_ev for f in folds],
            },
            images_per_second=float(np.mean([f.images_per_second for f in folds])) if folds else None,
            device=device,
            n_labels=n_labels,
            code_version=code_version(),
        )
        facade.upsert("models", [doc])
        return doc


def promote(facade: StoreFacade, model_id: str) -> ModelDoc:
    """Make ``model_id`` the current model of its name; the previous current one is retired."""
    with facade.unit():  # read and retire/promote together: no second "current" model
        docs = facade.query("models", {"model_id": model_id})
        if not docs:
            raise NoModel(f"model {model_id!r} is not registered")
        chosen = ModelDoc(**docs[0])
        updated = [
            ModelDoc(**d).model_copy(update={"status": "retired"})
            for d in facade.query("models", {"name": chosen.name, "status": "current"})
            if d["model_id"] != model_id
        ]
        facade.upsert("models", [*updated, chosen.model_copy(update={"status": "current"})])
    return chosen.model_copy(update={"status": "current"})


def get_model(
    facade: StoreFacade, model_id: str | None = None, name: str = DEFAULT_REGISTRY_NAME
) -> ModelDoc:
    """A model by id, else the current model of ``name`` (else its newest version)."""
    if model_id:
        docs = facade.query("models", {"model_id": model_id})
    else:
        docs = facade.query("models", {"name": name, "status": "current"}) or facade.query(
            "models", {"name": name}, sort={"version": -1}
        )
    if not docs:
        what = f"model {model_id!r}" if model_id else f"a model named {name!r}"
        raise NoModel(f"no {what} in the registry: run `epdi train` first")
    return ModelDoc(**docs[0])


def load_ensemble(facade: StoreFacade, model: ModelDoc) -> EnsembleResult:
    """Read a registered ensemble's weights back (``torch.load(weights_only=True)``).

    Raises
    ------
    DamagedModel
        The weights are missing, truncated or not a saved ensemble.
    """
    retrain = "retrain it (`epdi train`) or give another model (`epdi query models`)"
    try:
        blob = get_array(facade, ArrayRef(**model.weights.model_dump())).tobytes()
    except GridIntegrityError as exc:
        raise DamagedModel(
            f"the weights of model {model.model_id} cannot be read: {exc}; {retrain}"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ensemble.pt"
        path.write_bytes(blob)
        try:
            return EnsembleResult.load(path)
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError) as exc:
            raise DamagedModel(
                f"the weights of model {model.model_id} are not a saved ensemble "
                f"({type(exc).__name__}); {retrain}"
            ) from None
