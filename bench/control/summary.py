"""The figures the report and the targets are taken from."""

from __future__ import annotations

from typing import Any

from bench.control.routing import summarize_gateway
from bench.control.settings import GW_LABELS, TARGETS


# =========================================================================== report
def summarize(res: dict[str, Any]) -> None:
    if res.get("gateway"):
        summarize_gateway(res["gateway"])
    t = []
    cs = (res.get("cold") or {}).get("summary") or {}
    if cs.get("total_s", {}).get("n"):
        p50 = cs["total_s"]["p50"]
        t.append(
            {
                "item": "cold start p50 (scaled to zero → response)",
                "value": f"{p50 * 1000:.0f} ms",
                "target": f"≤ {TARGETS['cold_p50_s'] * 1000:.0f} ms",
                "met": p50 <= TARGETS["cold_p50_s"],
            }
        )
    rt = (res.get("gateway") or {}).get("ratios") or {}
    for name in ("host", "serving"):
        r64 = (rt.get("c64") or {}).get(name)
        if r64:
            t.append(
                {
                    "item": f"{GW_LABELS[name]}: req/s ÷ direct, c=64",
                    "value": f"{r64['rps_ratio']:.2f}",
                    "target": f"≥ {TARGETS['gateway_ratio']:.2f}",
                    "met": r64["rps_ratio"] >= TARGETS["gateway_ratio"],
                }
            )
        r1 = (rt.get("c1") or {}).get(name)
        if r1:
            t.append(
                {
                    "item": f"{GW_LABELS[name]}: added p50 latency, c=1",
                    "value": f"{r1['added_p50_ms']:.2f} ms",
                    "target": f"≤ {TARGETS['gateway_added_p50_ms']:.1f} ms",
                    "met": r1["added_p50_ms"] <= TARGETS["gateway_added_p50_ms"],
                }
            )
    at_n = (res.get("scale") or {}).get("at_n")
    if at_n:
        p50 = at_n["cli_get_all"]["p50"]
        t.append(
            {
                "item": f"`modelport get isvc -A` p50, {at_n['services']} services",
                "value": f"{p50:.0f} ms",
                "target": f"< {TARGETS['get_isvc_ms']:.0f} ms",
                "met": p50 < TARGETS["get_isvc_ms"],
            }
        )
        sc, a0 = res["scale"], res["scale"].get("at_0") or {}
        ap = sc.get("apply") or {}
        t.append(
            {
                "item": f"`GET /api/v1/inferenceservices` p50, {at_n['services']} services "
                "(0 services)",
                "value": f"{at_n['api_list_all']['p50']:.1f} ms "
                f"({(a0.get('api_list_all') or {}).get('p50', 0):.1f} ms)",
                "target": "—",
                "met": None,
            }
        )
        if ap:
            t.append(
                {
                    "item": f"{ap['services']} services applied → all Ready with 0 replicas",
                    "value": f"{ap['all_ready_zero_s']:.1f} s",
                    "target": "—",
                    "met": None,
                }
            )
        if a0:
            t.append(
                {
                    "item": f"RSS platform / zygote, {at_n['services']} idle services (0 services)",
                    "value": f"{at_n['platform_mem']['rss_mib']:.0f} / "
                    f"{at_n['zygote_mem']['rss_mib']:.0f} MiB "
                    f"({a0['platform_mem']['rss_mib']:.0f} / {a0['zygote_mem']['rss_mib']:.0f})",
                    "target": "—",
                    "met": None,
                }
            )
    res["targets"] = t
