"""Property-based API tests: schemathesis generates requests from the OpenAPI document
(valid and invalid ones), sends them over HTTP to the real app served by uvicorn, and
checks every response: no 5xx, a documented status and content type, and a body that
matches the documented schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.specs.openapi.schemas import OpenApiSchema

from shopkeeper.embedded import Endpoints
from tests.servekit import Shop, build_shop, serve

OPERATIONS = [
    ("GET", "/v1/customers/{customer_id}/recommendations"),
    ("GET", "/v1/customers/{customer_id}"),
    ("GET", "/v1/items/{product_id}/cross-sell"),
    ("GET", "/v1/items/{product_id}/up-sell"),
    ("POST", "/v1/cart/cross-sell"),
    ("POST", "/v1/customers/{customer_id}/next-best-offer"),
    ("GET", "/v1/ping"),
]


@pytest.fixture(scope="module")
def shop(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return build_shop(infra, "props1", tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def api_schema(shop: Shop) -> Iterator[OpenApiSchema]:
    with serve(shop.app()) as url:
        loaded = schemathesis.openapi.from_url(f"{url}/openapi.json")
        assert isinstance(loaded, OpenApiSchema)
        yield loaded


def test_the_document_lists_every_route(api_schema: OpenApiSchema) -> None:
    listed = {
        (operation.method.upper(), operation.path)
        for result in api_schema.get_all_operations()
        for operation in [result.ok()]  # type: ignore[union-attr]  # Err raises on .ok()
    }
    assert set(OPERATIONS) <= listed


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_gets_a_server_error(
    api_schema: OpenApiSchema, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=150,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate()

    check()
