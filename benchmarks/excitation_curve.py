"""Held-out quality against training hours, from excitation_compare.py reports and the runs' logs.

    PYTHONPATH=. .venv/bin/python benchmarks/excitation_curve.py \\
        --run excitation=/work/runs/issue26-excitation --run plain=/work/runs/issue26-plain \\
        REPORT.json [REPORT.json ...]

Why: the model card's curve pairs each evaluated checkpoint with the training time it took.
Every arm of the reports named like a `--run` (its checkpoint's `step` metadata) becomes one
row: the run's wall-clock hours to that step (training_curve.lineage: a resume from an
earlier checkpoint drops the steps lost), its validation NLL at that step where logged (in
its own classes: an excitation model's is of the excitation's codes), and the held-out
means ± standard errors of the report (mean over its utterances).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from excitation_compare import mean_se  # noqa: E402
from training_curve import lineage  # noqa: E402

from wavenet_core.model.checkpoint import read_metadata  # noqa: E402

COLUMNS = (("stoi", "STOI", "{:.3f}"), ("mel_distance_db", "log-mel dist (dB)", "{:.2f}"),
           ("dnsmos_ovrl", "DNSMOS OVRL", "{:.2f}"), ("pesq_wb", "PESQ-WB", "{:.2f}"),
           ("nll_grid16", "held-out NLL, 16-bit grid", "{:.3f}"),
           ("clipped", "samples at full scale (%)", "{:.2f}"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_FOLDER")
    args = p.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.run)
    times = {name: {r["step"]: (t, r.get("valid_bits")) for r, t in lineage(
        [json.loads(line) for line in open(Path(folder) / "metrics.jsonl")])}
        for name, folder in runs.items()}
    rows = {}
    for path in args.reports:
        report = json.loads(path.read_text())
        for system in report["labels"]:
            name = system.split("/")[0]
            if name not in runs:
                continue
            step = int(read_metadata(report["checkpoints"][name])["step"])
            cells = [mean_se([u[system][key] for u in report["utterances"]])
                     for key, _, _ in COLUMNS]
            rows[(name, step, system)] = (len(report["utterances"]), report["cpu"], cells)
    print("| model | step | training hours | valid NLL (own classes) | utterances | "
          + " | ".join(h for _, h, _ in COLUMNS) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(COLUMNS))
    for (name, step, system), (n, _cpu, cells) in sorted(rows.items()):
        t, valid = times[name].get(step, (float("nan"), None))
        mode = system.split("/")[1]
        print(f"| {name} ({mode}) | {step:,} | {t / 3600:.2f} | "
              + (f"{valid:.3f}" if valid is not None else "-") + f" | {n} | "
              + " | ".join(f"{fmt.format(m)} ± {fmt.format(se)}"
                           for (m, se, _), (_, _, fmt) in zip(cells, COLUMNS)) + " |")
    print(f"\nCPU of the evaluations: {', '.join(sorted({c for _, c, _ in rows.values()}))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
