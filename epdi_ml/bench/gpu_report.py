"""Text and JSON output of the GPU check (:mod:`epdi_ml.bench.gpu`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], path: Path | str) -> Path:
    """Write the report as JSON (tracebacks included) to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return path


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as text lines: environment, one line per model and size, verdict."""
    env = report["environment"]
    where = env.get("gpu", "CPU") + (f" ({env['gpu_memory_mib']} MiB)" if "gpu" in env else "")
    data = report["data"]
    lines = [
        f"gpu check [{report['mode']}] on {where}; "
        f"torch {env['torch']} (CUDA build {env['torch_cuda_build']})",
        f"data: {data['fragments']} reference fragments ({data['valleys']} valleys, "
        f"{data['saddles']} saddles, {data['surfaces']} surfaces), loaded in {data['load_s']} s",
        f"{'model':<19}{'px':>4} {'train img/s':>11} {'infer fp32':>10} {'infer amp':>10} "
        f"{'peak MiB':>9} {'|dE| fp32':>10} {'|dE| amp':>9} {'pred std':>9}   (eV)",
    ]
    for c in report["cases"]:
        if "error" in c:
            lines.append(f"{c['model']:<19}{c['pixels']:>4} FAILED: {c['error']}")
            continue

        def num(key: str, fmt: str, case: dict[str, Any] = c) -> str:
            value = case.get(key)
            return "-" if value is None else format(value, fmt)

        lines.append(
            f"{c['model']:<19}{c['pixels']:>4} {num('train_images_per_s', '.0f'):>11} "
            f"{num('infer_fp32_images_per_s', '.0f'):>10} {num('infer_amp_images_per_s', '.0f'):>10} "
            f"{num('train_peak_mib', '.0f'):>9} {num('fp32_max_abs_diff_ev', '.2e'):>10} "
            f"{num('amp_max_abs_diff_ev', '.2e'):>9} {num('prediction_std_ev', '.3f'):>9}"
        )
    notes = sorted({f"{c['model']}: {c['weights']}" for c in report["cases"]})
    lines += [f"weights: {n}" for n in notes]
    lines += [f"FAIL: {f}" for f in report["failures"]]
    verdict = "passed" if report["passed"] else f"FAILED ({len(report['failures'])} problems)"
    lines.append(f"{verdict}; wall time {report['wall_time_s']:.0f} s")
    return lines
