"""The serving API: an ASGI app (Starlette) over the recommendation rules.

``create_app(settings)`` builds it; its lifespan opens Redis, loads the promoted model and
starts the refresh loops (model poll, catalogue, trending), each in a worker thread so a
refresh never stalls a request. Routes are thin: parse and check parameters (422 with the
field and what is wrong), read Redis once, call ``Recommender``, encode with orjson.

Redis calls in a request are synchronous on purpose: one HMGET on a pooled connection
costs ~0.1 ms, less than a hop to a thread; timeouts are short and a circuit breaker keeps
an outage from costing each request its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feature_store import FeatureStoreError, folded
from serving._params import (
    BadRequest,
    OfferRequest,
    check_id,
    context_of,
    k_of,
    parse_cart,
    parse_offer_request,
)
from serving.live import Live
from serving.metrics import ServingMetrics, exposition_registry
from serving.next_best_offer import OfferRules, Plan, eligible_actions, plan_offer, with_grant
from serving.offer_answer import NO_PLAN, offer_body, outcome
from serving.offer_profile import OfferProfile
from serving.openapi import spec
from serving.recommend import Answer, Recommender, Suggestion, describe, popular_only
from serving.sent_offers import SentOffers
from serving.settings import ServingSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
_MAX_BODY = 64 * 1024
_SUMMARY = (
    "segment", "churn_probability", "clv_12m", "clv_p_alive", "loyalty_tier", "loyalty_points",
    "orders_total", "revenue_total", "recency_days", "cart_value",
)  # fmt: skip
_INTERNAL = ("_seq", "orders_log", "win:views", "win:adds", "win:orders", "win:sessions")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _problem(status: int, error: str, detail: str, field: str | None = None) -> Response:
    body: dict[str, str] = {"error": error, "detail": detail}
    if field is not None:
        body["field"] = field
    return _json(body, status)


def create_app(
    settings: ServingSettings,
    *,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The serving app.

    Args:
        settings: Serving settings.
        registry: Prometheus registry (a fresh one per app by default, so tests and
            several apps in one process do not collide).
        clock: Wall clock in epoch seconds.
    """
    metrics = ServingMetrics(registry or CollectorRegistry())
    live = Live(settings, metrics, clock=clock)
    api = _Api(settings, live, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for step in (live.refresh_catalog, live.poll_model, live.refresh_trending):
            await anyio.to_thread.run_sync(step)
        loops = [
            asyncio.create_task(_every(settings.model_poll_seconds, live.poll_model)),
            asyncio.create_task(_every(settings.catalog_refresh_seconds, live.refresh_catalog)),
            asyncio.create_task(_every(settings.trending_refresh_seconds, live.refresh_trending)),
        ]
        try:
            yield
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            live.close()
            if api.sent is not None:
                await anyio.to_thread.run_sync(api.sent.close)

    timed = api.timed
    routes = [
        Route("/v1/customers/{customer_id}/recommendations",
              timed("recommendations", api.recommendations)),
        Route("/v1/customers/{customer_id}/next-best-offer",
              timed("next_best_offer", api.next_best_offer), methods=["POST"]),
        Route("/v1/customers/{customer_id}", timed("customer", api.customer)),
        Route("/v1/items/{product_id}/cross-sell", timed("cross_sell", api.cross_sell)),
        Route("/v1/items/{product_id}/up-sell", timed("up_sell", api.up_sell)),
        Route("/v1/cart/cross-sell", timed("cart_cross_sell", api.cart_cross_sell),
              methods=["POST"]),
        Route("/v1/ping", timed("ping", api.ping)),
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/metrics", api.metrics_endpoint),
        Route("/openapi.json", api.openapi),
    ]  # fmt: skip
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.live = live
    return app


class _Api:
    """The route handlers, over one process's ``Live`` state."""

    def __init__(self, settings: ServingSettings, live: Live, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.document = orjson.dumps(spec(settings))
        self.offer_rules = OfferRules.from_settings(settings)
        self.sent = (
            SentOffers(settings.kafka_bootstrap, settings.namespace, metrics)
            if settings.kafka_bootstrap
            else None
        )

    def timed(self, route: str, handler: Handler) -> Handler:
        """``handler`` with its latency and status counted, and bad input made a 422."""
        histogram = self.metrics.latency.labels(route)
        responses = self.metrics.responses

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except BadRequest as exc:
                response = _problem(422, "invalid_request", exc.message, exc.field)
            except Exception:  # the last resort: say so, count it, keep serving
                log.exception("%s failed", route)
                response = _problem(500, "internal_error", "the request failed; see the logs")
            histogram.observe(time.perf_counter() - started)
            responses.labels(route, str(response.status_code)).inc()
            return response

        return endpoint

    def _answer(
        self, route: str, result: Answer, *, surface: str, context: str, degraded: bool,
        **extra: Any,
    ) -> Response:  # fmt: skip
        current = self.live.recommender
        fallback = "redis_unavailable" if degraded and result.fallback else result.fallback
        if fallback is not None:
            self.metrics.fallbacks.labels(route, fallback).inc()
        self.metrics.sources.labels(route, result.source).inc()
        return _json(
            {
                # Surface and context are readable from the id: a click attributes without a lookup.
                "recommendation_id": f"rec.{surface}.{context}.{uuid.uuid4().hex}",
                "model_version": current.version if current else None,
                "context": context,
                "source": result.source,
                "personalized": result.personalized,
                "degraded": degraded,
                "fallback": fallback,
                **extra,
                "items": [self._item(s) for s in result.items],
            }
        )

    def _item(self, s: Suggestion) -> dict[str, Any]:
        current = self.live.recommender
        catalog = current.catalog if current else None
        facts = catalog.get(s.product_id) if catalog else None
        related = catalog.get(s.related) if catalog and s.related else None
        return {
            "product_id": s.product_id,
            "name": facts.name if facts else None,
            "score": s.score,
            "reason": s.reason,
            "reason_text": describe(
                s.reason,
                (related.name if related else None) or s.related,
                facts.category if facts else None,
            ),
            "related_product_id": s.related,
        }

    def _no_model(self, route: str, k: int, context: str, surface: str, degraded: bool) -> Response:
        result = Answer(popular_only(self.live.trending, k), "trending", False, "no_model")
        return self._answer(route, result, surface=surface, context=context, degraded=degraded)

    def _k(self, request: Request) -> int:
        return k_of(request.query_params, self.settings.default_k, self.settings.max_k)

    async def recommendations(self, request: Request) -> Response:
        """``GET /v1/customers/{customer_id}/recommendations``."""
        customer_id = check_id(request.path_params["customer_id"], "customer_id")
        k = self._k(request)
        context = context_of(request.query_params, "home")
        read = self.live.read_customer(customer_id)
        current = self.live.recommender
        if current is None:
            return self._no_model("recommendations", k, context, "customer", read.degraded)
        result = current.for_customer(
            customer_id, read.view, k, now=self.live.clock(), trending=self.live.trending
        )
        return self._answer(
            "recommendations", result, surface="customer", context=context,
            degraded=read.degraded, customer_id=customer_id,
        )  # fmt: skip

    async def cross_sell(self, request: Request) -> Response:
        """``GET /v1/items/{product_id}/cross-sell``."""
        return self._for_product(
            request, "cross_sell", lambda r, p, k: r.cross_sell(p, k, trending=self.live.trending)
        )

    async def cart_cross_sell(self, request: Request) -> Response:
        """``POST /v1/cart/cross-sell``."""
        s = self.settings
        cart = parse_cart(
            await _body(request), default_k=s.default_k, most_k=s.max_k, most_items=s.max_cart_items
        )
        k = int(cart.k or s.default_k)
        current = self.live.recommender
        if current is None:
            return self._no_model("cart_cross_sell", k, cart.context, "cart", False)
        result = current.basket(cart.items, k, trending=self.live.trending)
        return self._answer(
            "cart_cross_sell", result, surface="cart", context=cart.context, degraded=False
        )

    async def up_sell(self, request: Request) -> Response:
        """``GET /v1/items/{product_id}/up-sell``."""
        return self._for_product(request, "up_sell", lambda r, p, k: r.up_sell(p, k))

    def _for_product(
        self, request: Request, route: str, answer: Callable[[Recommender, str, int], Answer]
    ) -> Response:
        """A product route: check the id, ``k`` and context, answer (or fall back)."""
        product_id = check_id(request.path_params["product_id"], "product_id")
        k = self._k(request)
        context = context_of(request.query_params, "product")
        current = self.live.recommender
        if current is None:
            return self._no_model(route, k, context, route, False)
        return self._answer(
            route, answer(current, product_id, k), surface=route, context=context,
            degraded=False, product_id=product_id,
        )  # fmt: skip

    async def customer(self, request: Request) -> Response:
        """``GET /v1/customers/{customer_id}``: the live profile."""
        customer_id = check_id(request.path_params["customer_id"], "customer_id")
        unavailable = _problem(503, "redis_unavailable", "the feature store is not answering")
        if self.live.redis_down:
            return unavailable
        try:
            profile, erased = self.live.read_profile(customer_id)
        except FeatureStoreError:
            return unavailable
        if profile is None:
            what = "was erased" if erased else "is not known"
            return _problem(404, "not_found", f"customer {customer_id!r} {what}")
        return _json(_profile(customer_id, profile, self.live.clock()))

    async def next_best_offer(self, request: Request) -> Response:
        """``POST /v1/customers/{customer_id}/next-best-offer``."""
        customer_id = check_id(request.path_params["customer_id"], "customer_id")
        s = self.settings
        ask = parse_offer_request(await _body(request), most_k=s.max_k, most_items=s.max_cart_items)
        now = self.live.clock()
        fields, failure = self.live.read_fields(customer_id)
        degraded = failure is not None
        if fields is None:
            why = failure or "unknown_customer"
            return self._offer(customer_id, ask, now, NO_PLAN, fallback=why, degraded=degraded)
        profile = OfferProfile.parse(fields)
        consent = profile.personalization
        if consent is False or (s.personalization_requires_consent and consent is not True):
            return self._offer(
                customer_id, ask, now, NO_PLAN, fallback="no_consent", degraded=degraded
            )
        day = dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()
        spent = self.live.budget_spent(day)
        if spent is not None:
            self.metrics.offer_budget_spent.set(spent)
        rules = self.offer_rules
        actions = eligible_actions(
            profile, rules=rules, recommender=self.live.recommender, trending=self.live.trending,
            customer_id=customer_id, now=now, k=int(ask.k or 1), cart=ask.cart,
        )  # fmt: skip
        plan = plan_offer(
            profile, actions, rules=rules, customer_id=customer_id, channel=ask.channel, now=now,
            budget_left=0.0 if spent is None else s.offer_daily_budget - spent,
        )  # fmt: skip
        offer = plan.offer
        if offer is not None and offer.discount.amount > 0:
            granted = self.live.reserve_discount(day, offer.offer_id, offer.discount.amount)
            if granted is None or granted < offer.discount.amount:
                self.metrics.offer_budget_short.labels(offer.action.trigger).inc()
            plan = dataclasses.replace(
                plan, offer=with_grant(offer, granted or 0.0, rules.economics)
            )
            degraded = degraded or granted is None
        if plan.offer is not None and self.sent is not None:  # the flow counts it too
            made = plan.offer
            self.sent.send(
                customer_id, at=now, offer_id=made.offer_id, trigger=made.action.trigger,
                state=made.action.state_key, channel=ask.channel,
            )  # fmt: skip
        return self._offer(customer_id, ask, now, plan, degraded=degraded or spent is None)

    def _offer(
        self, customer_id: str, ask: OfferRequest, now: float, plan: Plan, *,
        fallback: str | None = None, degraded: bool,
    ) -> Response:  # fmt: skip
        """Count a next-best-offer answer and encode it."""
        self.metrics.next_best_offers.labels(*outcome(plan, fallback)).inc()
        for s in plan.alternatives:
            self.metrics.offer_rejections.labels(s.action.trigger, s.why or "none").inc()
        if fallback is not None:
            self.metrics.fallbacks.labels("next_best_offer", fallback).inc()
        current = self.live.recommender
        return _json(
            offer_body(
                plan, customer_id=customer_id, channel=ask.channel, context=ask.context,
                now=now, ttl_seconds=self.settings.offer_ttl_hours * 3600.0,
                model_version=current.version if current else None, fallback=fallback,
                degraded=degraded, item=self._item,
            )
        )  # fmt: skip

    async def healthz(self, _: Request) -> Response:
        """Alive."""
        return _json({"status": "ok"})

    async def readyz(self, _: Request) -> Response:
        """Ready: a model is loaded and Redis answers."""
        current = self.live.recommender
        redis_ok = await anyio.to_thread.run_sync(self.live.ping)
        body = {"model": current.version if current else None, "redis": redis_ok}
        return _json(body, 200 if current is not None and redis_ok else 503)

    async def ping(self, _: Request) -> Response:
        """A static answer, the framework's floor in the latency benchmark."""
        return _json({"ok": True})

    async def metrics_endpoint(self, _: Request) -> Response:
        """Prometheus exposition."""
        self.live.update_ages()
        registry = exposition_registry(self.metrics.registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, _: Request) -> Response:
        """The OpenAPI document."""
        return Response(self.document, media_type="application/json")


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
        raise BadRequest("body", f"the body may hold at most {_MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise BadRequest("body", f"the body may hold at most {_MAX_BODY} bytes")
    return body


async def _every(seconds: float, step: Callable[[], object]) -> None:
    """Run ``step`` in a worker thread every ``seconds``; a failure is logged, not fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await anyio.to_thread.run_sync(step)
        except Exception:
            log.exception("background refresh %s failed", getattr(step, "__name__", step))


def _profile(customer_id: str, stored: dict[str, str], now: float) -> dict[str, Any]:
    """The stored profile as typed JSON, windows folded at ``now``, internals dropped."""
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    features: dict[str, Any] = {}
    for name, value in stored.items():
        if name in _INTERNAL or name.startswith("_"):
            continue
        features[name] = _typed(value)
    features.update(folded(stored, at))
    return {
        "customer_id": customer_id,
        "as_of": at.isoformat().replace("+00:00", "Z"),
        "summary": {name: features.get(name) for name in _SUMMARY},
        "features": features,
    }


def _typed(value: str) -> Any:
    if value[:1] in ("[", "{"):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(value)
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def app_from_env() -> Starlette:
    """The app with settings from ``SHOPKEEPER_*`` variables (uvicorn's factory, one per
    worker process)."""
    # Background refreshes run in threads; hand the GIL over every 0.5 ms instead of 5 ms
    # so a refresh delays a request by at most that (measured in benchmarks/serving.py).
    sys.setswitchinterval(0.0005)
    return create_app(ServingSettings())
