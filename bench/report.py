"""Machine information, the printed table, ``latest.json`` and ``latest.md``."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

COLUMNS = ("#", "figure", "zoo", "other", "ratio", "target", "met", "zoo score", "other score")


def machine_info() -> dict[str, Any]:
    import numpy
    import sklearn
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                        for p in threadpool_info() if p.get("user_api") == "blas"]
    except Exception:  # noqa: BLE001 - informative only
        pass
    try:
        import zoo

        info["zoo"] = zoo.__version__
    except Exception:  # noqa: BLE001
        pass
    return info


def busy(info: dict[str, Any]) -> bool:
    """Whether other work loaded the machine enough to make the timings noisy (the 1-minute load
    average above half the cores before the run, or after it less the benchmark's own one)."""
    before, after = info.get("load_average_before"), info.get("load_average")
    cores = info.get("cores_usable") or 1
    return bool((before and before[0] > 0.5 * cores) or (after and after[0] - 1 > 0.5 * cores))


# -- formatting ----------------------------------------------------------------------------


def fmt_value(side: dict) -> str:
    v, unit = side["value"], side["unit"]
    if unit == "s":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.3f} s"
    return f"{v:.1f} {unit}"


def fmt_ratio(r: dict) -> str:
    if r["target"]["text"].endswith("%"):
        return f"{r['ratio'] * 100:.2f}%"
    if r["target"]["text"].endswith(" s"):  # a difference in seconds, not a ratio
        return f"{r['ratio']:+.3f} s"
    return f"{r['ratio']:.2f}x"


def fmt_score(score: dict | None) -> str:
    if not score:
        return "n/a"
    name = "acc" if score["metric"] == "accuracy" else score["metric"]
    text = f"{name} {score['value']:.4f}"
    if "range" in score:
        text += f" ({score['range'][0]:.4f}-{score['range'][1]:.4f})"
    return text


def table_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    out = []
    for r in rows:
        out.append((str(r["figure"]), r["label"], f"{fmt_value(r['zoo'])}",
                    f"{fmt_value(r['other'])} ({r['other']['label']})", fmt_ratio(r), r["target"]["text"],
                    "yes" if r["target_met"] else "NO", fmt_score(r["zoo"]["score"]), fmt_score(r["other"]["score"])))
    return out


def text_table(rows: list[dict]) -> str:
    body = table_rows(rows)
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *(line(b) for b in body)])


def parity_lines(parity: list[dict]) -> list[str]:
    lines = []
    for p in parity:
        state = "bit-identical" if p["identical"] else (
            f"DIFFER in {len(p['differing'])} of {p['tensors']} tensors (max abs diff {p['max_abs_diff']:.3g})")
        text = (f"{p['workload']} on {p['device']}, {p['epochs']} epochs, seed {p['seed']}, {p['threads']} thread(s), "
                f"{p['optimizer']}: engine vs tight loop final weights {state}")
        if not p["engine_repeatable"] or not p["tight_repeatable"]:
            text += "; NOTE: repeated runs of one side were not identical"
        if "vs_torch_fused" in p:
            v = p["vs_torch_fused"]
            text += (f"; vs a tight loop with {v['optimizer']}: "
                     + ("bit-identical" if v["identical"] else f"differ (max abs diff {v['max_abs_diff']:.3g})"))
        lines.append(text)
        lines += [f"  diagnosis: {d}" for d in p.get("diagnosis", [])]
    return lines


def breakdown_lines(rows: list[dict]) -> list[str]:
    lines, seen = [], set()
    for r in rows:
        b = r["zoo"].get("breakdown")
        key = (r.get("workload"), r.get("device"))
        if not b or key in seen or b.get("train") is None:
            continue
        seen.add(key)
        total = r["zoo"]["value"]
        parts = ", ".join(f"{k} {v:.3f} s ({v / total * 100:.0f}%)" for k, v in b.items() if v is not None)
        lines.append(f"{key[0]} on {key[1]}: {total:.3f} s = {parts}")
    return lines


def machine_lines(info: dict[str, Any]) -> list[str]:
    lines = [f"date: {info['date']}", f"CPU: {info['cpu']} ({info['cores']} cores, {info['cores_usable']} usable)",
             f"python {info['python']}, torch {info['torch']} ({info['torch_threads']} intra-op threads by default), "
             f"scikit-learn {info['sklearn']}, numpy {info['numpy']}, zoo {info.get('zoo', '?')}",
             f"GPU: {info['gpu'] or 'none available (CUDA figures skipped)'}",
             f"load average: before {info.get('load_average_before')}, after {info.get('load_average')}"]
    if info.get("blas"):
        lines.append(f"BLAS (numpy, scikit-learn): {'; '.join(info['blas'])}")
    return lines


def text_report(report: dict[str, Any]) -> str:
    parts = [text_table(report["rows"])]
    if report["parity"]:
        parts += ["", "Weight parity:", *(f"  {line}" for line in parity_lines(report["parity"]))]
    bd = breakdown_lines(report["rows"])
    if bd:
        parts += ["", "Where the engine's time goes (medians; setup = data + model, train = optimizer steps, "
                  "between = validation, history and checkpoints, finish = final metrics, save, reload check):",
                  *(f"  {line}" for line in bd)]
    if report.get("not_measured"):
        parts += ["", "Not measured:", *(f"  {k}: {v}" for k, v in report["not_measured"].items())]
    if report["errors"]:
        parts += ["", "Errors:", *(f"  {k}: {v}" for k, v in report["errors"].items())]
    parts += ["", *machine_lines(report["machine"])]
    if busy(report["machine"]):
        parts.append("WARNING: the machine was busy (load average above half the cores): timings are noisy")
    return "\n".join(parts)


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    out = ["# zoo benchmarks", "",
           f"`{s['command']}`: {s['repeats']} repeats, epochs "
           f"{s['epochs'] or 'per recipe'}, figures {', '.join(s['only'])}. Times are medians of interleaved runs "
           "in one process; ratios as defined per row.", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in table_rows(report["rows"])]
    out += ["", "Ratios: " + "; ".join(sorted({f"{r['title']}: {r['ratio_def']}" for r in report["rows"]}))]
    notes = [f"- {r['figure']}. {r['label']}: {'; '.join(r['notes'])}" for r in report["rows"] if r["notes"]]
    if notes:
        out += ["", "## Notes", "", *notes]
    if report["parity"]:
        out += ["", "## Weight parity", "", *(f"- {line.strip()}" for line in parity_lines(report["parity"]))]
    bd = breakdown_lines(report["rows"])
    if bd:
        out += ["", "## Where the engine's time goes", "",
                "setup = data + model; train = the optimizer steps; between = validation, history and checkpoints "
                "each epoch; finish = final metrics, saving and the reload check.", "", *(f"- {line}" for line in bd)]
    if report.get("not_measured"):
        out += ["", "## Not measured", "", *(f"- {k}: {v}" for k, v in report["not_measured"].items())]
    if report["errors"]:
        out += ["", "## Errors", "", *(f"- {k}: {v}" for k, v in report["errors"].items())]
    out += ["", "## Machine", "", *(f"- {line}" for line in machine_lines(report["machine"]))]
    if busy(report["machine"]):
        out.append("- **the machine was busy (load average above half the cores): timings are noisy**")
    return "\n".join(out) + "\n"


def write(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "latest.json", out_dir / "latest.md"
    js.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    md.write_text(markdown(report))
    return js, md


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return repr(obj)


def echo(text: str = "") -> None:
    print(text, file=sys.stdout, flush=True)
