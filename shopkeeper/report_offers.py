"""``shopkeeper report offers``: what the real-time offers did, trigger by trigger.

Reads, from the start of each topic to its end when the report starts:

- the decisions (``shopkeeper.offer_log``): fired offers are the treated arm, offers
  held out by the hold-out guardrail the control arm;
- the customers' responses on the clickstream and purchases topics: ``Order Completed``
  (conversions, and orders of recommended products), ``Offer Clicked`` and
  ``Offer Redeemed`` (by ``offer_id``), ``Product Clicked`` with a ``recommendation_id``.
  Events are counted once per ``message_id`` (producers deliver at least once).

and attributes them (``models.attribution``): a decision converts when its customer
completes an order in ``(at, at + window]``; treated minus control conversion, with
Newcombe's hybrid score interval (``models.uplift``), is the offer's uplift. Decisions
whose window is still open at the report's time are left out of both arms, and counted. Recommended
products convert when bought within a day of the click.

Writes ``report.json`` and ``report.png`` to a directory, and optionally the uplift as
Prometheus gauges in the textfile collector's format.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Final

import events
from models.attribution import (
    OfferResponse,
    Order,
    RecommendationClick,
    TriggerCounts,
    attribute_offers,
    attribute_recommendations,
)
from models.uplift import METHOD, uplift, wilson_interval
from shopkeeper.history import History, replay_topics
from shopkeeper.offer_log import DecisionLog, read_decisions

__all__ = ["build_report", "format_table", "read_report", "write_prometheus", "write_report"]

_HOUR: Final = 3_600.0
_RESPONSES: Final = (
    events.OrderCompleted,
    events.OfferClicked,
    events.OfferRedeemed,
    events.ProductClicked,
)


def _is_response(event: events.Event) -> bool:
    if type(event) is events.ProductClicked:
        return event.properties.recommendation_id is not None
    return type(event) in _RESPONSES


def read_report(
    bootstrap: str,
    namespace: str,
    *,
    window_s: float = 48 * _HOUR,
    recommendation_window_s: float = 24 * _HOUR,
    level: float = 0.95,
    now: dt.datetime,
    progress: bool = False,
) -> dict[str, Any]:
    """Read the namespace's decisions and responses from Kafka and build the report.

    Raises:
        shopkeeper.history.HistoryError: A topic does not exist, or Kafka stopped answering.
    """
    decisions = read_decisions(bootstrap, namespace, progress=progress)
    topics = [events.in_namespace(t, namespace) for t in (events.CLICKSTREAM, events.PURCHASES)]
    responses = replay_topics(bootstrap, topics, progress=progress, keep=_is_response)
    report = build_report(
        decisions,
        responses,
        window_s=window_s,
        recommendation_window_s=recommendation_window_s,
        level=level,
        now=now,
    )
    return {"namespace": namespace, **report}


def build_report(
    decisions: DecisionLog,
    responses: History,
    *,
    window_s: float = 48 * _HOUR,
    recommendation_window_s: float = 24 * _HOUR,
    level: float = 0.95,
    now: dt.datetime,
) -> dict[str, Any]:
    """Attribute the responses to the decisions; the report as plain JSON-ready data."""
    orders: list[Order] = []
    offer_responses: list[OfferResponse] = []
    clicks: list[RecommendationClick] = []
    seen: set[str] = set()
    for e in responses.events:
        customer = e.customer_key
        if e.message_id in seen or customer is None or not _is_response(e):
            continue
        seen.add(e.message_id)
        t = e.timestamp.timestamp()
        if type(e) is events.OrderCompleted:
            products = tuple(line.product_id for line in e.properties.products)
            orders.append(Order(customer, t, products))
        elif type(e) is events.OfferClicked:
            offer_responses.append(OfferResponse(e.properties.offer_id, t))
        elif type(e) is events.OfferRedeemed:
            p = e.properties
            offer_responses.append(OfferResponse(p.offer_id, t, True, p.revenue or 0.0, p.currency))
        elif type(e) is events.ProductClicked:
            served = e.properties.recommendation_id
            if served is not None:
                clicks.append(RecommendationClick(customer, t, e.properties.product_id, served))
    offers = attribute_offers(
        decisions.exposures, orders, offer_responses, window_s=window_s, until=now.timestamp()
    )
    recommended = attribute_recommendations(clicks, orders, window_s=recommendation_window_s)
    names = sorted(offers.triggers.keys() | decisions.suppressed.keys())
    return {
        "generated_at": now.astimezone(dt.UTC).isoformat(),
        "window_hours": window_s / _HOUR,
        "recommendation_window_hours": recommendation_window_s / _HOUR,
        "level": level,
        "method": METHOD,
        "read": {
            "decisions": len({e.offer_id for e in decisions.exposures}),
            "suppressed": sum(sum(r.values()) for r in decisions.suppressed.values()),
            "rejected_decisions": decisions.rejected,
            "responses": len(seen),
            "rejected_events": responses.rejected,
        },
        "ignored_responses": offers.ignored,
        "triggers": {
            name: _trigger(
                offers.triggers.get(name, TriggerCounts()),
                decisions.suppressed.get(name, {}),
                level,
            )
            for name in names
        },
        "recommendations": {
            context: {
                "clicks": c.clicks,
                "conversions": c.conversions,
                "rate": c.conversions / c.clicks,
            }
            for context, c in recommended.items()
        },
    }


def _arm(n: int, conversions: int, level: float) -> dict[str, Any]:
    if n == 0:
        return {"n": 0, "conversions": 0, "rate": None, "low": None, "high": None}
    low, high = wilson_interval(conversions, n, level)
    return {
        "n": n,
        "conversions": conversions,
        "rate": conversions / n,
        "low": float(low),
        "high": float(high),
    }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _trigger(counts: TriggerCounts, suppressed: dict[str, int], level: float) -> dict[str, Any]:
    c = counts
    effect: dict[str, Any] | None = None
    if c.treated and c.control:
        u = uplift(
            treated_conversions=c.treated_conversions,
            treated=c.treated,
            control_conversions=c.control_conversions,
            control=c.control,
            level=level,
        )
        effect = {
            "difference": u.difference,
            "low": u.low,
            "high": u.high,
            "relative": u.relative,
            "significant": u.significant,
        }
    return {
        "treated": _arm(c.treated, c.treated_conversions, level),
        "control": _arm(c.control, c.control_conversions, level),
        "uplift": effect,
        "open": c.open,
        "offers": {
            "clicked": c.clicked,
            "click_rate": _share(c.clicked, c.treated),
            "redeemed": c.redeemed,
            "redemption_rate": _share(c.redeemed, c.treated),
            "redeemed_revenue": dict(sorted(c.redeemed_revenue.items())),
            "revenue_per_offer": {
                currency: round(amount / c.treated, 4)
                for currency, amount in sorted(c.redeemed_revenue.items())
            },
        },
        "suppressed": dict(sorted(suppressed.items())),
    }


def _pct(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}%"


def format_table(report: dict[str, Any]) -> str:
    """The report as a table for the terminal: one line per trigger, then recommendations."""
    level = round(100 * report["level"])
    lines = [
        f"Offers: conversion within {report['window_hours']:g} h of the decision; uplift = "
        f"treated - control in points, {level}% CI ({report['method']})",
        f"{'trigger':<18}{'treated':>8}{'conv':>8}{'control':>9}{'conv':>8}"
        f"{'uplift':>8}  {f'{level}% CI':<15}{'lift':>7}{'clicked':>9}{'redeemed':>9}"
        f"  revenue",
    ]
    for name, t in report["triggers"].items():
        u = t["uplift"]
        ci = f"[{_pct(u['low'], signed=True)}, {_pct(u['high'], signed=True)}]" if u else "-"
        mark = "*" if u and u["significant"] else " "
        lift = _pct(u["relative"], signed=True) + "%" if u and u["relative"] is not None else "-"
        revenue = ", ".join(f"{v:,.2f} {k}" for k, v in t["offers"]["redeemed_revenue"].items())
        lines.append(
            f"{name:<18}{t['treated']['n']:>8,}{_pct(t['treated']['rate']):>8}"
            f"{t['control']['n']:>9,}{_pct(t['control']['rate']):>8}"
            f"{_pct(u['difference'], signed=True) if u else '-':>8}{mark} {ci:<15}{lift:>7}"
            f"{t['offers']['clicked']:>9,}{t['offers']['redeemed']:>9,}  {revenue or '-'}"
        )
    if not report["triggers"]:
        lines.append("  (no offer decisions)")
    lines.append("* the interval excludes 0")
    still_open = sum(t["open"] for t in report["triggers"].values())
    if still_open:
        lines.append(
            f"{still_open:,} decisions of the last {report['window_hours']:g} h are left out: "
            "their window is still open"
        )
    recos = report["recommendations"]
    if recos:
        lines.append(
            f"Recommendations: clicks, and orders of the clicked product within "
            f"{report['recommendation_window_hours']:g} h"
        )
        lines.extend(
            f"  {context:<30}{r['clicks']:>8,} clicks{r['conversions']:>8,} bought "
            f"{_pct(r['rate']):>7}"
            for context, r in recos.items()
        )
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.png`` (conversion by arm, uplift with its
    interval, recommendation contexts) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2))
    png_path = out / "report.png"
    triggers = report["triggers"]
    names = list(triggers)
    fig, (rates, lifts, recos) = plt.subplots(1, 3, figsize=(15, 4.5))
    for offset, arm in ((-0.2, "treated"), (0.2, "control")):
        shown = [(i, triggers[n][arm]) for i, n in enumerate(names) if triggers[n][arm]["n"]]
        rates.bar(
            [i + offset for i, _ in shown],
            [100 * a["rate"] for _, a in shown],
            width=0.4,
            yerr=[
                [100 * (a["rate"] - a["low"]) for _, a in shown],
                [100 * (a["high"] - a["rate"]) for _, a in shown],
            ],
            capsize=3,
            label=f"{arm} (n={sum(a['n'] for _, a in shown):,})",
        )
    rates.set_xticks(range(len(names)), names, rotation=20)
    rates.set_ylabel(f"conversion within {report['window_hours']:g} h (%)")
    rates.set_title("Conversion by arm (Wilson intervals)")
    rates.legend()
    measured = [(n, triggers[n]["uplift"]) for n in names if triggers[n]["uplift"]]
    lifts.errorbar(
        [100 * u["difference"] for _, u in measured],
        range(len(measured)),
        xerr=[
            [100 * (u["difference"] - u["low"]) for _, u in measured],
            [100 * (u["high"] - u["difference"]) for _, u in measured],
        ],
        fmt="o",
        capsize=4,
    )
    lifts.axvline(0, color="grey", linestyle="--")
    lifts.set_yticks(range(len(measured)), [n for n, _ in measured])
    lifts.set_ylim(-0.5, max(len(measured), 1) - 0.5)
    lifts.set_xlabel("treated - control (points)")
    lifts.set_title(f"Uplift, {round(100 * report['level'])}% CI (Newcombe hybrid score)")
    contexts = report["recommendations"]
    recos.barh(list(contexts), [100 * r["rate"] for r in contexts.values()])
    for i, r in enumerate(contexts.values()):
        recos.annotate(f" {r['conversions']:,}/{r['clicks']:,}", (100 * r["rate"], i), va="center")
    recos.set_xlim(0, 130 * max((r["rate"] for r in contexts.values()), default=0.0) + 1)
    recos.set_xlabel(f"clicks bought within {report['recommendation_window_hours']:g} h (%)")
    recos.set_title("Recommendations by context")
    if not contexts:
        recos.text(0.5, 0.5, "no recommendation clicks", ha="center", transform=recos.transAxes)
    fig.suptitle(f"Offer attribution, {report['generated_at'][:16]}")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return json_path, png_path


def write_prometheus(report: dict[str, Any], path: Path) -> None:
    """Write each trigger's uplift, its bounds, and conversion and decisions per arm as
    gauges in the Prometheus textfile collector's format (an atomic rename)."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    prefix = "shopkeeper_report_offers"
    gauges = {
        key: Gauge(f"{prefix}_{key}", text, ["trigger"], registry=registry)
        for key, text in (
            ("uplift", "Treated minus control conversion within the window (proportion)."),
            ("uplift_low", "Lower bound of the uplift's interval (Newcombe hybrid score)."),
            ("uplift_high", "Upper bound of the uplift's interval (Newcombe hybrid score)."),
        )
    }
    conversion = Gauge(
        f"{prefix}_conversion",
        "Share of decisions followed by an order within the window, by arm.",
        ["trigger", "arm"],
        registry=registry,
    )
    decisions = Gauge(
        f"{prefix}_decisions", "Decisions read, by arm.", ["trigger", "arm"], registry=registry
    )
    for name, t in report["triggers"].items():
        for arm in ("treated", "control"):
            decisions.labels(name, arm).set(t[arm]["n"])
            if t[arm]["rate"] is not None:
                conversion.labels(name, arm).set(t[arm]["rate"])
        if t["uplift"] is not None:
            gauges["uplift"].labels(name).set(t["uplift"]["difference"])
            gauges["uplift_low"].labels(name).set(t["uplift"]["low"])
            gauges["uplift_high"].labels(name).set(t["uplift"]["high"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
