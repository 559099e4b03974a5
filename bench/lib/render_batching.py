"""bench/BATCHING.md from bench/results/batching.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.lib.report import Results, header, level_cells, num, table


def best_batched(case: dict[str, Any]) -> tuple[str, float] | None:
    """The batched variant with the most req/s and its ratio to the unbatched one."""
    ok = {n: v for n, v in case["variants"].items() if (v.get("c64") or {}).get("status") == "ok"}
    off = ok.get("unbatched")
    batched = [n for n, v in ok.items() if v["batched"]]
    if not off or not batched or not off["c64"]["rps"]:
        return None
    best = max(batched, key=lambda n: float(ok[n]["c64"]["rps"]))
    return best, round(ok[best]["c64"]["rps"] / off["c64"]["rps"], 2)


def explanation(case: dict[str, Any], best: str, ratio: float) -> str | None:
    """Why the ratio is what it is, from the server's CPU per request and the call times."""
    ip, off, on = case["in_process"], case["variants"]["unbatched"], case["variants"][best]
    u, b = off.get("server_cpu_us_per_request"), on.get("server_cpu_us_per_request")
    mean = on.get("mean_batch_size")
    if ip.get("status") != "ok" or not u or not b or not mean:
        return None
    c1, c32 = ip["rows_1_us"], ip["rows_32_us"]
    call = c1 + (c32 - c1) * (min(mean, 32) - 1) / 31  # interpolated at the mean batch
    return (
        f"Why {ratio}×: with both cores busy, req/s follows the server's CPU per request, and "
        f"batching removes only per-call cost. Unbatched a request costs ≈ {u:.0f} µs of "
        f"server CPU, ≈ {c1:.0f} µs of it the 1-row model call; batched, one ≈ {call:.0f} µs "
        f"call serves {mean} requests on average and a request costs ≈ {b:.0f} µs: CPU per "
        f"request fell {u / b:.2f}× where req/s rose {ratio}× (the rest is noise of a shared "
        "machine, and the CPU the load generator gets back)."
    )


def _case_lines(key: str, case: dict[str, Any], res: Results) -> list[str]:
    c = res["config"]
    lines = [f"## Adaptive batching: {case['title']}", ""]
    ip = case["in_process"]
    if ip.get("status") == "ok":
        lines += [
            f"In-process model call ({ip['library']}, 1 thread, median of {ip['calls']}): "
            f"1 row {ip['rows_1_us']:.0f} µs, 32 rows {ip['rows_32_us']:.0f} µs.",
            "",
        ]
    lines += [
        f"`modelport serve --workers {c['workers']}`, access log off; one row per request "
        f"(V2 JSON); wrk -t2 -c64, {c['duration_s']} s after {c['warmup_s']} s of warm-up.",
        "",
    ]
    found = best_batched(case)
    rows = []
    for name, v in case["variants"].items():
        label = f"`{v['flags']}`" + ("" if v["batched"] else " (off)")
        label += " — best batched" if found and name == found[0] else ""
        cells = (
            level_cells(v.get("c64"))
            if not v.get("check")
            else [f"check failed: {v['check']}"[:80], "—", "—", "—"]
        )
        rows.append(
            [
                label,
                *cells,
                num(v.get("mean_batch_size"), 1),
                num(v.get("server_cpu_us_per_request")),
            ]
        )
    head = ["batching flags", "req/s", "p50 ms", "p99 ms", "errors", "mean batch"]
    lines += [*table([*head, "server CPU µs/request"], rows), ""]
    if found:
        lines += [
            f"Best batched ÷ unbatched req/s: **{found[1]}×** "
            f"(`{case['variants'][found[0]]['flags']}`).",
            "",
        ]
        why = explanation(case, *found)
        lines += [why, ""] if why else []
    return lines


def _binary_lines(b: dict[str, Any], res: Results) -> list[str]:
    r = b.get("c4") or {}
    cells = level_cells(r) if not b.get("check") else [f"check failed: {b['check']}", *"———"]
    rows = [[*cells, num(r.get("round_trip_gb_per_s"), 3)]]
    return [
        "## Binary tensor extension: 4 MiB FP32 round trip (identity model)",
        "",
        f"`modelport serve --workers {res['config']['workers']} --format custom` of "
        "`bench/models/identity_model.py`; wrk -t2 -c4 posting the binary body "
        "(`Inference-Header-Content-Length`), the same tensor coming back; GB/s counts the "
        "request and the response bodies.",
        "",
        *table(["req/s", "p50 ms", "p99 ms", "errors", "round trip GB/s"], rows, numeric_from=0),
        "",
    ]


def render(res: Results, json_path: Path) -> str:
    """The whole of BATCHING.md."""
    lines = header(res, "Adaptive batching and binary tensors (modelport alone)", json_path)
    lines += [f"- modelport imported from `{res['versions']['modelport_source']}`", ""]
    for key, case in res.get("cases", {}).items():
        lines += _case_lines(key, case, res)
    if res.get("binary"):
        lines += _binary_lines(res["binary"], res)
    if res.get("error"):
        lines += [f"The run stopped early: {res['error']}", ""]
    return "\n".join(lines)
