"""Every bad input a clean error: a table of refused commands over every CLI command group.

Each case runs the real CLI in-process (typer's ``CliRunner``) against a copy of one small store
(two 3x3 MoS2 surfaces with synthetic statics, fragments, labels and a trained small_cnn) or an
empty data folder, and checks:

- the exit code (2 for bad input, 1 where the command line was fine but the data or a server was not);
- exactly one line on stderr, starting ``error:`` and naming the bad value;
- no traceback (no exception other than the CLI's own exit);
- the store unchanged: the document count of every collection and every file of the data folder
  (path, size, SHA-256) are the same before and after.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import sqlite3
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from store_helpers import add_binding_energies, synthetic_fragment_store
from typer.testing import CliRunner

from stores.facade import StoreFacade
from stores.settings import get_settings
from workflows.cli.app import app

runner = CliRunner()

#: bytes that are not UTF-8 (a PNG header and stray high bytes): what a binary file looks like
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xc3\x28\xa0\xa1"

#: a campaign spec that would run: two 2x2 MoS2 surfaces, loose settings
SPEC = {
    "name": "bad-input",
    "hosts": ["MoS2"],
    "dopants": ["pristine", "Zn"],
    "supercell": 2,
    "static": {"engine": "gpaw", "h_ang": 0.3, "kpts": [1, 1, 1]},
    "neb": {"images": 3, "fmax_ev_ang": 0.2},
    "fragments": {"pixels": 16},
    "model": {"arch": "small_cnn", "pretrained": False, "pixels": 16, "epochs": 1, "folds": 2},
    "selection": {"strategy": "all"},
}


def spec_text(**changes: object) -> str:
    """YAML of :data:`SPEC` with ``changes`` (``step__field=value`` for nested fields)."""
    spec = json.loads(json.dumps(SPEC))
    for key, value in changes.items():
        if "__" in key:
            step, name = key.split("__")
            spec[step][name] = value
        else:
            spec[key] = value
    return yaml.safe_dump(spec)


def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Case:
    """One refused command.

    ``args`` and ``env`` values may hold ``{tmp}`` (the case's folder), ``{surface}`` (a stored
    surface id) and ``{port}`` (a closed local port); ``files`` are written into ``{tmp}`` first;
    ``prepare`` names a function of :data:`PREPARE` that changes the store or writes an archive.
    """

    id: str
    args: tuple[str, ...]
    says: str
    code: int = 2
    store: str = "populated"
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)
    prepare: str | None = None


def C(id: str, args: str | list[str], says: str, **kwargs) -> Case:  # noqa: N802  (table shorthand)
    """A :class:`Case`; ``args`` as a space-separated string when no argument holds a space."""
    parts = args.split() if isinstance(args, str) else args
    return Case(id, tuple(parts), says, **kwargs)


def F(id: str, args: str, variable: str, name: str, content: str | bytes, says: str | None = None) -> Case:  # noqa: N802
    """A :class:`Case` whose environment ``variable`` points at the file ``name`` holding ``content``."""
    return C(id, args, says or name, env={variable: "{tmp}/" + name}, files={name: content})


MONGO = {"EPDI_STORE__BACKEND": "mongodb", "EPDI_STORE__PORT": "{port}", "EPDI_STORE__TIMEOUT_S": "0.5"}
FILE = {"afile": "just a file\n"}

CASES: list[Case] = [
    # -- surfaces ---------------------------------------------------------------------------
    C("surfaces-unknown-host", "surfaces build MoX2", "MoX2"),
    C("surfaces-dopant-nonmetal", "surfaces build MoS2 --dopant S", "'S'"),
    C("surfaces-dopant-unknown", "surfaces build MoS2 --dopant Xx", "Xx"),
    C("surfaces-dopant-host-metal", "surfaces build MoS2 --dopant Mo", "host metal"),
    C("surfaces-size-1", "surfaces build MoS2 --size 1", "size 1"),
    C("surfaces-size-0", "surfaces build MoS2 --size 0", "size 0"),
    C("surfaces-size-negative", "surfaces build MoS2 --size -3", "size -3"),
    C("surfaces-size-100", "surfaces build MoS2 --size 100", "100"),
    C("surfaces-size-not-int", "surfaces build MoS2 --size abc", "--size"),
    C("surfaces-vacuum-negative", "surfaces build MoS2 --vacuum -2", "vacuum -2"),
    C("surfaces-vacuum-0", "surfaces build MoS2 --vacuum 0", "vacuum"),
    C("surfaces-vacuum-nan", "surfaces build MoS2 --vacuum nan", "vacuum"),
    C("surfaces-vacuum-inf", "surfaces build MoS2 --vacuum inf", "vacuum"),
    C("surfaces-out-is-file", "surfaces build MoS2 --size 3 --out {tmp}/afile", "afile", files=FILE),
    C("surfaces-set-unknown-host", "surfaces campaign-set --hosts MoS2,Foo", "Foo"),
    C("surfaces-set-dopant-nonmetal", "surfaces campaign-set --dopants Co,C", "'C'"),
    C("surfaces-set-size-1", "surfaces campaign-set --hosts MoS2 --size 1", "size 1"),
    C("surfaces-set-size-50", "surfaces campaign-set --hosts MoS2 --size 50", "50"),
    C("surfaces-set-vacuum-nan", "surfaces campaign-set --hosts MoS2 --vacuum nan", "vacuum"),
    C("surfaces-unknown-option", "surfaces build MoS2 --colour red", "--colour"),
    C("surfaces-missing-argument", "surfaces build", "host"),
    # -- host table and settings (every command reads them) ----------------------------------
    C("hosts-file-missing", "surfaces hosts", "nope.yaml", env={"EPDI_HOSTS_FILE": "{tmp}/nope.yaml"}),
    F("hosts-file-binary", "surfaces hosts", "EPDI_HOSTS_FILE", "hosts.yaml", BINARY),
    F("hosts-file-bad-yaml", "surfaces hosts", "EPDI_HOSTS_FILE", "hosts.yaml", "MoS2: {phase: 2H\n"),
    F("hosts-file-a-list", "surfaces hosts", "EPDI_HOSTS_FILE", "hosts.yaml", "- MoS2\n- WS2\n"),
    F(
        "hosts-file-row-incomplete",
        "surfaces build XyS2",
        "EPDI_HOSTS_FILE",
        "h.yaml",
        "XyS2: {phase: 2H, metal: Mo}\n",
        "XyS2",
    ),
    C("settings-file-missing", "query surfaces", "nope.yaml", env={"EPDI_SETTINGS_FILE": "{tmp}/nope.yaml"}),
    F("settings-file-binary", "query surfaces", "EPDI_SETTINGS_FILE", "s.yaml", BINARY),
    F("settings-file-bad-yaml", "query surfaces", "EPDI_SETTINGS_FILE", "s.yaml", "store: [backend\n"),
    F("settings-file-a-list", "query surfaces", "EPDI_SETTINGS_FILE", "s.yaml", "- data_dir\n"),
    F(
        "settings-port-not-int",
        "query surfaces",
        "EPDI_SETTINGS_FILE",
        "s.yaml",
        "store: {port: abc}\n",
        "port",
    ),
    C("settings-backend-unknown", "query surfaces", "backend", env={"EPDI_STORE__BACKEND": "sqlite"}),
    C("settings-store-not-json", "query surfaces", "EPDI_STORE", env={"EPDI_STORE": "backend=mongodb"}),
    C("settings-store-json-list", "query surfaces", "store", env={"EPDI_STORE": "[1, 2]"}),
    C(
        "data-dir-is-a-file",
        "query surfaces",
        "afile",
        store="empty",
        files=FILE,
        env={"EPDI_DATA_DIR": "{tmp}/afile"},
    ),
    C(
        "data-dir-under-a-file",
        "surfaces build MoS2 --size 3",
        "afile",
        store="empty",
        files=FILE,
        env={"EPDI_DATA_DIR": "{tmp}/afile/data"},
    ),
    C(
        "data-dir-unwritable",
        "surfaces build MoS2 --size 3",
        "/sys/epdi-data",
        store="empty",
        env={"EPDI_DATA_DIR": "/sys/epdi-data"},
    ),
    C(
        "mongodb-unreachable-query",
        "query surfaces",
        "cannot reach MongoDB",
        code=1,
        store="empty",
        env=MONGO,
    ),
    C(
        "mongodb-unreachable-build",
        "surfaces build MoS2 --size 3",
        "cannot reach MongoDB",
        code=1,
        store="empty",
        env=MONGO,
    ),
    C(
        "mongodb-unreachable-uri",
        "query models",
        "cannot reach MongoDB",
        code=1,
        store="empty",
        env={
            "EPDI_STORE__BACKEND": "mongodb",
            "EPDI_STORE__URI": "mongodb://127.0.0.1:{port}",
            "EPDI_STORE__TIMEOUT_S": "0.5",
        },
    ),
    # -- hops compute -----------------------------------------------------------------------
    C("hops-unknown-host", "hops compute MoX2", "MoX2"),
    C("hops-images-0", "hops compute MoS2 --images 0", "images 0"),
    C("hops-images-2", "hops compute MoS2 --images 2", "images 2"),
    C("hops-fmax-0", "hops compute MoS2 --fmax 0", "fmax"),
    C("hops-fmax-negative", "hops compute MoS2 --fmax -1", "fmax"),
    C("hops-fmax-nan", "hops compute MoS2 --fmax nan", "fmax"),
    C("hops-unknown-surface", "hops compute surf-0000000000000000", "surf-0000000000000000"),
    C("hops-size-1", "hops compute MoS2 --size 1", "size 1"),
    C("hops-size-100", "hops compute MoS2 --size 100", "100"),
    # -- barrier ----------------------------------------------------------------------------
    C("barrier-images-0", "barrier MoS2 --size 3 --images 0", "images 0"),
    C("barrier-device-tpu", "barrier MoS2 --size 3 --device tpu", "tpu"),
    C("barrier-engine-foo", "barrier MoS2 --size 3 --engine foo", "foo"),
    C("barrier-fmax-negative", "barrier MoS2 --size 3 --fmax -0.1", "fmax"),
    C("barrier-fmax-inf", "barrier MoS2 --size 3 --fmax inf", "fmax"),
    C("barrier-size-1", "barrier MoS2 --size 1", "size 1"),
    C("barrier-dopant-nonmetal", "barrier MoS2 --dopant C", "'C'"),
    C("barrier-engine-vasp", "barrier MoS2 --size 3 --engine vasp", "vasp"),
    C("barrier-preconverge-foo", "barrier MoS2 --size 3 --engine gpaw --preconverge foo", "foo"),
    C("barrier-gpaw-h-ang-negative", "barrier MoS2 --size 3 --engine gpaw --h-ang -1", "--h-ang"),
    C("barrier-gpaw-basis-unknown", "barrier MoS2 --size 2 --engine gpaw --basis nosuchbasis", "nosuchbasis"),
    # -- static -----------------------------------------------------------------------------
    C("static-engine-foo", "static {surface} --engine foo", "foo"),
    C("static-engine-chgnet", "static {surface} --engine chgnet", "chgnet"),
    C("static-h-ang-negative", "static {surface} --h-ang -1", "--h-ang"),
    C("static-h-ang-tiny", "static {surface} --h-ang 0.01", "0.01"),
    C("static-h-ang-nan", "static {surface} --h-ang nan", "nan"),
    C("static-basis-unknown", "static {surface} --basis nosuchbasis", "nosuchbasis"),
    C("static-unknown-surface", "static surf-0000000000000000", "surf-0000000000000000"),
    C("static-size-1", "static MoS2 --size 1", "size 1"),
    C("static-size-100", "static MoS2 --size 100", "100"),
    # -- campaign run (spec validation) -----------------------------------------------------
    C("spec-missing", "campaign run {tmp}/nope.yaml", "nope.yaml"),
    C("spec-binary", "campaign run {tmp}/s.yaml", "s.yaml", files={"s.yaml": BINARY}),
    C("spec-bad-yaml", "campaign run {tmp}/s.yaml", "s.yaml", files={"s.yaml": "name: [x\n"}),
    C("spec-a-list", "campaign run {tmp}/s.yaml", "mapping", files={"s.yaml": "- a\n- b\n"}),
    C("spec-unknown-field", "campaign run {tmp}/s.yaml", "colour", files={"s.yaml": spec_text(colour="red")}),
    C(
        "spec-kpts-zero-negative",
        "campaign run {tmp}/s.yaml",
        "kpts",
        files={"s.yaml": spec_text(static__kpts=[0, -1, 1])},
    ),
    C("spec-kpts-two", "campaign run {tmp}/s.yaml", "kpts", files={"s.yaml": spec_text(static__kpts=[1, 1])}),
    C(
        "spec-vacuum-nan",
        "campaign run {tmp}/s.yaml",
        "vacuum_ang",
        files={"s.yaml": spec_text(vacuum_ang=float("nan"))},
    ),
    C(
        "spec-vacuum-inf",
        "campaign run {tmp}/s.yaml",
        "vacuum_ang",
        files={"s.yaml": spec_text(vacuum_ang=float("inf"))},
    ),
    C("spec-vacuum-0", "campaign run {tmp}/s.yaml", "vacuum_ang", files={"s.yaml": spec_text(vacuum_ang=0)}),
    C("spec-supercell-1", "campaign run {tmp}/s.yaml", "supercell", files={"s.yaml": spec_text(supercell=1)}),
    C(
        "spec-supercell-100",
        "campaign run {tmp}/s.yaml",
        "supercell",
        files={"s.yaml": spec_text(supercell=100)},
    ),
    C("spec-images-2", "campaign run {tmp}/s.yaml", "images", files={"s.yaml": spec_text(neb__images=2)}),
    C(
        "spec-fmax-nan",
        "campaign run {tmp}/s.yaml",
        "fmax",
        files={"s.yaml": spec_text(neb__fmax_ev_ang=float("nan"))},
    ),
    C(
        "spec-arch-unknown",
        "campaign run {tmp}/s.yaml",
        "resnet9000",
        files={"s.yaml": spec_text(model__arch="resnet9000")},
    ),
    C(
        "spec-arch-without-pretrained",
        "campaign run {tmp}/s.yaml",
        "small_cnn",
        files={"s.yaml": spec_text(model__pretrained=True)},
    ),
    C(
        "spec-arch-too-few-pixels",
        "campaign run {tmp}/s.yaml",
        "16",
        files={"s.yaml": spec_text(model__arch="densenet121", model__pixels=16)},
    ),
    C(
        "spec-basis-unknown",
        "campaign run {tmp}/s.yaml",
        "nosuchbasis",
        files={"s.yaml": spec_text(static__basis="nosuchbasis")},
    ),
    C(
        "spec-h-ang-negative",
        "campaign run {tmp}/s.yaml",
        "h_ang",
        files={"s.yaml": spec_text(static__h_ang=-1)},
    ),
    C("spec-unknown-host", "campaign run {tmp}/s.yaml", "MoX2", files={"s.yaml": spec_text(hosts=["MoX2"])}),
    C("spec-unknown-dopant", "campaign run {tmp}/s.yaml", "Qq", files={"s.yaml": spec_text(dopants=["Qq"])}),
    C(
        "spec-one-surface",
        "campaign run {tmp}/s.yaml",
        "at least two",
        files={"s.yaml": spec_text(dopants=["pristine"])},
    ),
    C(
        "spec-name-with-space",
        "campaign run {tmp}/s.yaml",
        "name",
        files={"s.yaml": spec_text(name="my run")},
    ),
    C(
        "spec-engine-unknown",
        "campaign run {tmp}/s.yaml",
        "engine",
        files={"s.yaml": spec_text(static__engine="foo")},
    ),
    C(
        "spec-neb-gpaw-basis-unknown",
        "campaign run {tmp}/s.yaml",
        "nosuchbasis",
        files={"s.yaml": spec_text(neb__engine="gpaw", neb__gpaw={"basis": "nosuchbasis"})},
    ),
    C(
        "spec-neb-options-of-another-engine",
        "campaign run {tmp}/s.yaml",
        "neb.gpaw",
        files={"s.yaml": spec_text(neb__gpaw={"h_ang": 0.2})},
    ),
    C(
        "spec-preconverge-itself",
        "campaign run {tmp}/s.yaml",
        "preconverge",
        files={"s.yaml": spec_text(neb__preconverge="chgnet")},
    ),
    C(
        "spec-only-unknown",
        "campaign run {tmp}/s.yaml",
        "WS2-Fe",
        files={"s.yaml": spec_text(only=["WS2-Fe"])},
    ),
    C(
        "plan-arch-unknown",
        "campaign plan {tmp}/s.yaml",
        "resnet9000",
        files={"s.yaml": spec_text(model__arch="resnet9000")},
    ),
    C(
        "plan-basis-unknown",
        "campaign plan {tmp}/s.yaml",
        "nosuchbasis",
        files={"s.yaml": spec_text(static__basis="nosuchbasis")},
    ),
    C("plan-spec-binary", "campaign plan {tmp}/s.yaml", "s.yaml", files={"s.yaml": BINARY}),
    # -- campaign submit, launch, status, retrain (FireWorks) -------------------------------
    C(
        "submit-arch-unknown",
        "campaign submit {tmp}/s.yaml",
        "resnet9000",
        files={"s.yaml": spec_text(model__arch="resnet9000")},
    ),
    C(
        "submit-basis-unknown",
        "campaign submit {tmp}/s.yaml",
        "nosuchbasis",
        files={"s.yaml": spec_text(static__basis="nosuchbasis")},
    ),
    C(
        "submit-kpts-negative",
        "campaign submit {tmp}/s.yaml",
        "kpts",
        files={"s.yaml": spec_text(static__kpts=[2, -2, 1])},
    ),
    C(
        "submit-launchpad-missing",
        "campaign submit {tmp}/s.yaml --launchpad {tmp}/lp.yaml",
        "lp.yaml",
        files={"s.yaml": spec_text()},
    ),
    C(
        "submit-launchpad-binary",
        "campaign submit {tmp}/s.yaml --launchpad {tmp}/lp.yaml",
        "lp.yaml",
        files={"s.yaml": spec_text(), "lp.yaml": BINARY},
    ),
    C(
        "submit-launchpad-a-list",
        "campaign submit {tmp}/s.yaml --launchpad {tmp}/lp.yaml",
        "lp.yaml",
        files={"s.yaml": spec_text(), "lp.yaml": "- host\n"},
    ),
    C("launch-lost-after-negative", "launch --lost-after -1", "--lost-after"),
    C("launch-worker-missing", "launch --worker {tmp}/nope.yaml", "nope.yaml"),
    C("launch-launchpad-binary", "launch --launchpad {tmp}/lp.yaml", "lp.yaml", files={"lp.yaml": BINARY}),
    C("launch-env-launchpad-missing", "launch", "nope.yaml", env={"EPDI_LAUNCHPAD_FILE": "{tmp}/nope.yaml"}),
    C(
        "launch-embedded-launchpad-binary",
        "launch",
        "launchpad.json",
        code=1,
        prepare="binary_embedded_launchpad",
    ),
    C("status-unknown-campaign", "status no-such-campaign", "no-such-campaign", code=1),
    C("status-launchpad-missing", "status --launchpad {tmp}/nope.yaml", "nope.yaml"),
    C("status-launchpad-binary", "status --launchpad {tmp}/lp.yaml", "lp.yaml", files={"lp.yaml": BINARY}),
    C("retrain-if-new-negative", "retrain --if-new -3", "--if-new -3"),
    C("retrain-model-unknown", "retrain --model alexnet", "alexnet"),
    C("retrain-device-tpu", "retrain --device tpu", "tpu"),
    C("retrain-fraction-2", "retrain --fraction 2", "fraction 2"),
    C("retrain-epochs-0", "retrain --epochs 0", "epochs"),
    C("retrain-arch-without-pretrained", "retrain --model small_cnn --pretrained", "small_cnn"),
    # -- dataset ----------------------------------------------------------------------------
    C(
        "generate-unknown-step",
        "dataset generate {tmp}/s.yaml --steps static,dance",
        "dance",
        files={"s.yaml": spec_text()},
    ),
    C("generate-spec-missing", "dataset generate {tmp}/nope.yaml", "nope.yaml"),
    C(
        "generate-kpts-negative",
        "dataset generate {tmp}/s.yaml",
        "kpts",
        files={"s.yaml": spec_text(static__kpts=[-1, 1, 1])},
    ),
    C(
        "generate-basis-unknown",
        "dataset generate {tmp}/s.yaml",
        "nosuchbasis",
        files={"s.yaml": spec_text(static__basis="nosuchbasis")},
    ),
    C(
        "generate-out-is-file",
        "dataset generate {tmp}/s.yaml --out {tmp}/afile",
        "afile",
        files={"s.yaml": spec_text(), **FILE},
    ),
    C(
        "generate-only-unknown",
        "dataset generate {tmp}/s.yaml --only WS2-Fe",
        "WS2-Fe",
        files={"s.yaml": spec_text()},
    ),
    C("export-path-is-dir", "dataset export {tmp}", "tmp"),
    C("export-parent-is-file", "dataset export {tmp}/afile/set.tar.gz", "afile", files=FILE),
    C(
        "export-unknown-surface",
        "dataset export {tmp}/set.tar.gz --surface surf-0000000000000000",
        "surf-0000000000000000",
    ),
    C("load-missing", "dataset load {tmp}/nope.tar.gz", "nope.tar.gz", code=1),
    C("load-not-an-archive", "dataset load {tmp}/x.tar.gz", "x.tar.gz", code=1, files={"x.tar.gz": BINARY}),
    C(
        "load-manifest-a-list",
        "dataset load {tmp}/set.tar.gz",
        "manifest",
        code=1,
        prepare="archive_manifest_list",
    ),
    C(
        "load-manifest-unknown-collection",
        "dataset load {tmp}/set.tar.gz",
        "potions",
        code=1,
        prepare="archive_unknown_collection",
    ),
    C("load-no-manifest", "dataset load {tmp}/set.tar.gz", "manifest", code=1, prepare="archive_no_manifest"),
    C("load-wrong-format", "dataset load {tmp}/set.tar.gz", "format", code=1, prepare="archive_wrong_format"),
    C(
        "load-one-bad-row",
        "dataset load {tmp}/set.tar.gz",
        "hops",
        code=1,
        store="empty",
        prepare="archive_bad_row",
    ),
    C(
        "load-missing-blob",
        "dataset load {tmp}/set.tar.gz",
        "blob",
        code=1,
        store="empty",
        prepare="archive_missing_blob",
    ),
    # -- query, report ----------------------------------------------------------------------
    C("query-surfaces-dopant-nonmetal", "query surfaces --dopant C", "'C'"),
    C("query-hops-dopant-unknown", "query hops --dopant Xx", "Xx"),
    C("query-hops-model-unknown", "query hops --model model-nosuch", "model-nosuch", code=1),
    C("query-predictions-kind", "query predictions --kind corner", "corner"),
    C("query-models-status", "query models --status shiny", "shiny"),
    C("report-unknown-campaign", "report no-such-campaign", "no-such-campaign", code=1),
    C("report-out-is-file", "report no-such-campaign --out {tmp}/afile", "afile", files=FILE),
    # -- vasp inputs, import ----------------------------------------------------------------
    C("vasp-kind-unknown", "vasp inputs MoS2 --kind md --out {tmp}/v", "md"),
    C("vasp-images-0", "vasp inputs MoS2 --kind neb --images 0 --out {tmp}/v", "images 0"),
    C("vasp-kpoints-0", "vasp inputs MoS2 --kind static --kpoints 0 --out {tmp}/v", "kpoints 0"),
    C("vasp-out-is-file", "vasp inputs MoS2 --kind static --size 3 --out {tmp}/afile", "afile", files=FILE),
    C("vasp-unknown-host", "vasp inputs MoX2 --kind static --out {tmp}/v", "MoX2"),
    C("vasp-size-1", "vasp inputs MoS2 --kind static --size 1 --out {tmp}/v", "size 1"),
    C("vasp-size-100", "vasp inputs MoS2 --kind static --size 100 --out {tmp}/v", "100"),
    C("import-folder-missing", "import vasp {tmp}/nope", "nope"),
    C("import-folder-empty", "import vasp {tmp}", "tmp", code=1),
    # -- weights, train, predict, profiles --------------------------------------------------
    C("weights-fetch-unknown", "weights fetch alexnet", "alexnet"),
    C("weights-list-dir-is-file", "weights list --dir {tmp}/afile", "afile", files=FILE),
    C("train-model-unknown", "train --model resnet9000", "resnet9000"),
    C("train-arch-without-pretrained", "train --model small_cnn", "small_cnn"),
    C("train-device-tpu", "train --model small_cnn --no-pretrained --device tpu", "tpu"),
    C("train-fraction-1.5", "train --fraction 1.5", "fraction 1.5"),
    C("train-epochs-0", "train --model small_cnn --no-pretrained --epochs 0", "epochs"),
    C("train-pixels-4", "train --model small_cnn --no-pretrained --pixels 4", "pixels"),
    C("train-folds-1", "train --model small_cnn --no-pretrained --folds 1", "folds"),
    C("train-dense-pixels-16", "train --model densenet121 --no-pretrained --pixels 16", "16"),
    C("predict-model-unknown", "predict --model-id model-nosuch", "model-nosuch", code=1),
    C("predict-weights-truncated", "predict", "weights", code=1, prepare="truncate_weights"),
    C("predict-weights-missing", "predict", "weights", code=1, prepare="remove_weights"),
    C("predict-weights-not-torch", "predict", "weights", code=1, prepare="garble_weights"),
    C(
        "profiles-surface-unknown",
        "profiles --surface surf-0000000000000000",
        "surf-0000000000000000",
        code=1,
    ),
    C("profiles-out-is-file", "profiles --out {tmp}/afile", "afile", files=FILE),
    # -- fragments, analyze ------------------------------------------------------------------
    C("fragments-nothing-chosen", "fragments build", "--surface"),
    C(
        "fragments-surface-unknown",
        "fragments build --surface surf-0000000000000000",
        "surf-0000000000000000",
        code=1,
    ),
    C("fragments-pixels-0", "fragments build --all --pixels 0", "pixels"),
    C("fragments-size-negative", "fragments build --all --size-ang -1", "size"),
    C("fragments-tolerance-negative", "fragments build --all --symmetry-tol -1", "symmetry"),
    C("fragments-show-tile-0", "fragments show {surface} --out {tmp}/m.png --tile 0", "tile"),
    C(
        "fragments-show-unknown",
        "fragments show surf-0000000000000000 --out {tmp}/m.png",
        "surf-0000000000000000",
        code=1,
    ),
    C("fragments-show-out-is-dir", "fragments show {surface} --out {tmp}", "tmp"),
    C("analyze-mep-no-such-labels", "analyze mep --engine vasp", "vasp"),
    C("analyze-mep-out-is-file", "analyze mep --out {tmp}/afile", "afile", files=FILE),
    C("analyze-mep-engine-unknown", "analyze mep --engine foo", "foo"),
    # -- bench -----------------------------------------------------------------------------
    C("bench-hop-size-1", "bench hop --size 1", "size 1"),
    C("bench-hop-images-0", "bench hop --size 3 --images 0", "images 0"),
    C("bench-fragments-order-2", "bench fragments --size 3 --order 2", "order"),
    C("bench-fragments-pixels-0", "bench fragments --size 3 --pixels 0", "pixels"),
    C("bench-fragments-seconds-negative", "bench fragments --size 3 --seconds -1", "seconds"),
    C("bench-paper-model-unknown", "bench paper --model resnet9000", "resnet9000"),
    C("bench-paper-device-tpu", "bench paper --model small_cnn --no-pretrained --device tpu", "tpu"),
    C("bench-selection-strategy", "bench selection --strategy telepathy", "telepathy"),
    C("bench-selection-learner", "bench selection --learner oracle", "oracle"),
    C("bench-selection-seeds-0", "bench selection --seeds 0", "seeds"),
    C("bench-selection-plot-is-dir", "bench selection --plot {tmp}", "tmp"),
    C("bench-labels-dft-unknown", "bench labels --dft hartree", "hartree"),
    C(
        "bench-dft-neb-chgnet-spec",
        "bench dft-neb --spec {tmp}/s.yaml",
        "neb.engine",
        files={"s.yaml": spec_text()},
    ),
    C("bench-dft-neb-unknown-host", "bench dft-neb --host MoX2", "MoX2"),
    C("load-unknown-packaged-name", "dataset load referencex", "referencex", code=1),
]


# -- the store the cases run against ----------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A data folder with two labelled 3x3 MoS2 surfaces, fragments and a small trained model.

    Returns the folder, a stored surface id and an exported archive of the dataset.
    """
    root = tmp_path_factory.mktemp("bad-inputs")
    folder = root / "epdi-data"
    archive = root / "set.tar.gz"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EPDI_DATA_DIR", str(folder))
        mp.delenv("EPDI_SETTINGS_FILE", raising=False)
        mp.chdir(root)
        get_settings.cache_clear()
        facade, ids = synthetic_fragment_store(("none", "Co"), 16)
        for i, sid in enumerate(ids):
            add_binding_energies(facade, sid, offset=0.05 * i)
        train = ["train", "--model", "small_cnn", "--no-pretrained", "--epochs", "1", "--folds", "2"]
        trained = runner.invoke(app, [*train, "--pixels", "16", "--fraction", "0.5"])
        assert trained.exit_code == 0, trained.output
        exported = runner.invoke(app, ["dataset", "export", str(archive), "--surface", ids[0]])
        assert exported.exit_code == 0, exported.output
    get_settings.cache_clear()
    return {"folder": folder, "surface": ids[1], "archive": archive}


def snapshot(folder: Path) -> dict:
    """Documents of every stored collection and (path, size, SHA-256) of every other file of ``folder``.

    The collections are read with sqlite in read-only mode, not through the settings, which a case
    may have broken on purpose; their files are compared by content (rows), since sqlite may
    rewrite a page header on a read-only open by the store.
    """
    if not folder.is_dir():
        return {"absent": not folder.exists()}
    files = {
        str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".collection"
    }
    rows = {}
    for path in sorted((folder / "store" / "epdi").glob("*.collection")):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = connection.execute("SELECT k, v FROM documents ORDER BY k").fetchall()
        except sqlite3.DatabaseError as exc:  # a case that damaged the file on purpose
            found = [("unreadable", str(exc))]
        finally:
            connection.close()
        rows[path.name[: -len(".collection")]] = hashlib.sha256(repr(found).encode()).hexdigest()
    return {"files": files, "collections": rows}


# -- preparations that change the store or write an archive ---------------------------------------------


def _rewrite_archive(source: Path, target: Path, edit) -> None:
    """Copy the archive ``source`` to ``target`` with ``edit(name, bytes) -> bytes | None`` applied."""
    with tarfile.open(source, "r:gz") as tar_in, tarfile.open(target, "w:gz") as tar_out:
        for member in tar_in.getmembers():
            payload = edit(member.name, tar_in.extractfile(member).read())
            if payload is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(payload)
            tar_out.addfile(info, io.BytesIO(payload))


def _manifest_edit(change):
    def edit(name: str, payload: bytes) -> bytes | None:
        if name != "manifest.json":
            return payload
        return change(json.loads(payload))

    return edit


def _weights_blob(data_dir: Path, change) -> None:
    """Apply ``change(collection, key)`` to the data-store blob of the registered model's weights."""
    facade = StoreFacade()
    (model,) = facade.query("models")
    store = facade.data_store()
    store.connect()
    try:
        change(store._collection, model["weights"]["key"])
    finally:
        store.close()


def _set_data(collection, key: str, data: bytes) -> None:
    collection.update_one({"blob_uuid": key}, {"$set": {"data": data}})


def _truncate(collection, key: str) -> None:
    blob = collection.find_one({"blob_uuid": key})
    _set_data(collection, key, bytes(blob["data"])[: len(blob["data"]) // 2])


def _garble(collection, key: str) -> None:
    import zlib

    _set_data(collection, key, zlib.compress(b"this is not a torch file" * 10))


PREPARE = {
    "archive_manifest_list": lambda tmp, data, arch: _rewrite_archive(
        arch, tmp / "set.tar.gz", _manifest_edit(lambda m: json.dumps(list(m)).encode())
    ),
    "archive_unknown_collection": lambda tmp, data, arch: _rewrite_archive(
        arch,
        tmp / "set.tar.gz",
        _manifest_edit(lambda m: json.dumps(m | {"counts": {"potions": 3}}).encode()),
    ),
    "archive_no_manifest": lambda tmp, data, arch: _rewrite_archive(
        arch, tmp / "set.tar.gz", lambda name, payload: None if name == "manifest.json" else payload
    ),
    "archive_wrong_format": lambda tmp, data, arch: _rewrite_archive(
        arch, tmp / "set.tar.gz", _manifest_edit(lambda m: json.dumps(m | {"format": "zip/9"}).encode())
    ),
    "archive_bad_row": lambda tmp, data, arch: _rewrite_archive(
        arch,
        tmp / "set.tar.gz",
        lambda name, payload: (
            payload + b'\n{"hop_id": "hop-broken", "index": "first"}' if name == "hops.jsonl" else payload
        ),
    ),
    "archive_missing_blob": lambda tmp, data, arch: _rewrite_archive(
        arch,
        tmp / "set.tar.gz",
        lambda name, payload: None if name.startswith("blobs/") and name.endswith(".zlib") else payload,
    ),
    "truncate_weights": lambda tmp, data, arch: _weights_blob(data, _truncate),
    "remove_weights": lambda tmp, data, arch: _weights_blob(
        data, lambda c, k: c.delete_one({"blob_uuid": k})
    ),
    "garble_weights": lambda tmp, data, arch: _weights_blob(data, _garble),
    "binary_embedded_launchpad": lambda tmp, data, arch: (
        (data / "fireworks").mkdir(parents=True, exist_ok=True),
        (data / "fireworks" / "launchpad.json").write_bytes(BINARY),
    ),
}


# -- one case ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a refused command did."""

    exit_code: int
    stderr_lines: list[str]
    exception: BaseException | None
    before: list[dict]
    after: list[dict]

    @property
    def traceback(self) -> bool:
        """An exception other than the CLI's own exit escaped."""
        return self.exception is not None and not isinstance(self.exception, SystemExit)

    @property
    def store_changed(self) -> bool:
        """The store or the data folder differ after the command."""
        return self.before != self.after

    def clean(self, case: Case) -> bool:
        """Right code, one ``error:`` line naming the value, no traceback, store unchanged."""
        return (
            self.exit_code == case.code
            and len(self.stderr_lines) == 1
            and self.stderr_lines[0].startswith("error: ")
            and case.says.lower() in self.stderr_lines[0].lower()
            and not self.traceback
            and not self.store_changed
        )


def run_case(case: Case, tmp: Path, data_dir: Path, template: dict, monkeypatch) -> Outcome:
    """Set up ``case`` in ``tmp`` (the store copied into ``data_dir``), run it, snapshot around it."""
    if case.store == "populated":
        shutil.copytree(template["folder"], data_dir)
    work = tmp / "tmp"
    work.mkdir()
    for name, content in case.files.items():
        path = work / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    if case.prepare:
        PREPARE[case.prepare](work, data_dir, template["archive"])
    values = {"tmp": str(work), "surface": template["surface"], "port": str(closed_port())}
    env = {key: value.format(**values) for key, value in case.env.items()}
    args = [a.format(**values) for a in case.args]
    watched = [data_dir] + ([Path(env["EPDI_DATA_DIR"])] if "EPDI_DATA_DIR" in env else [])
    before = [snapshot(folder) for folder in watched]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, args)
    finally:
        get_settings.cache_clear()
    after = [snapshot(folder) for folder in watched]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return Outcome(result.exit_code, lines, result.exception, before, after)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(case, template, tmp_path, data_dir, monkeypatch):
    outcome = run_case(case, tmp_path, data_dir, template, monkeypatch)
    assert not outcome.traceback, repr(outcome.exception)
    assert outcome.exit_code == case.code, outcome.stderr_lines
    assert len(outcome.stderr_lines) == 1, outcome.stderr_lines
    assert outcome.stderr_lines[0].startswith("error: "), outcome.stderr_lines
    assert case.says.lower() in outcome.stderr_lines[0].lower(), outcome.stderr_lines
    assert not outcome.store_changed


def test_the_table_is_large_and_covers_every_command_group():
    groups = {case.args[0] for case in CASES}
    commands = {info.name for info in app.registered_commands} | {g.name for g in app.registered_groups}
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)
    assert commands - {"quickstart"} <= groups, sorted(commands - groups)
