"""schemathesis against the app's own OpenAPI document: every operation, with a guest session.

Each operation is fuzzed with a fixed number of examples (derandomized, so CI sees the same
requests every run) in three flavours: valid data with made-up ids, valid data whose path
parameters and body id fields name the caller's real objects (so handlers run, not only
validation), and invalid data. Requests go to the in-process
app on the test's event loop (schemathesis runs in a worker thread; see ``LoopBridge``) and
every response goes through schemathesis's own checks, one verdict per check:

- ``not_a_server_error``: never a 5xx.
- ``negative_data_rejection``: data the schema forbids is refused with a 4xx.
- ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``: the response is what the document says it is.
- ``error_envelope`` (ours): every 4xx/5xx is ``{"error": {"code", "message", "details"?}}``,
  which the document's own error schemas do not describe (FastAPI's ``HTTPValidationError``
  leaves every field optional, so ``response_schema_conformance`` alone cannot tell).

Each operation gets its own guest (``POST /api/auth/logout`` and the deletes would spoil a
shared one). Checks that re-send requests or need a stateful recorder (``ignored_auth``,
``use_after_free``…) are not run here: the authorization matrix covers those concerns.
``text/event-stream`` bodies are not validated beyond their content type because the document
gives them no schema (schemathesis has nothing to check them against).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hostile.conftest import (
    REQUEST_TIMEOUT,
    LoopBridge,
    Owner,
    assert_envelope,
    guest_client,
    seed_owner,
    server_log,
    sign_in,
)

# Examples per operation and flavour; 3 flavours x 24 operations x 2 backends fits CI time.
EXAMPLES = 15
BASE_URL = "http://testserver"
CHECKS: dict[str, CheckFunction] = {
    "not_a_server_error": not_a_server_error,
    "negative_data_rejection": negative_data_rejection,
    "status_code_conformance": status_code_conformance,
    "content_type_conformance": content_type_conformance,
    "response_schema_conformance": response_schema_conformance,
    "response_headers_conformance": response_headers_conformance,
}
AnyCase = Case[Any]
Operation = APIOperation[Any, Any, Any, Any]
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # violations are recorded, not raised: no shrinking
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass(frozen=True, slots=True)
class Violation:
    check: str
    operation: str
    status: int
    request: str
    response: str
    reason: str
    server_log: str

    def __str__(self) -> str:
        text = (
            f"[{self.check}] {self.operation} -> {self.status}\n"
            f"  request:  {self.request}\n  response: {self.response}\n  why: {self.reason}"
        )
        if self.server_log:
            text += f"\n  server log:\n{self.server_log}"
        return text


@dataclass(slots=True)
class FuzzReport:
    """What the fuzzing run saw: violations per check (one per operation and status)."""

    requests: int = 0
    operations: list[str] = field(default_factory=list)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    violations: dict[str, dict[tuple[str, int], Violation]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def add(self, violation: Violation) -> None:
        self.violations[violation.check].setdefault(
            (violation.operation, violation.status), violation
        )

    def of(self, check: str) -> str:
        found = self.violations.get(check, {})
        return "\n\n".join(str(v) for v in found.values())


def wire_body(prepared: requests.PreparedRequest) -> bytes:
    body = prepared.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    assert isinstance(body, bytes), type(body)  # JSON bodies only: no streams, no files
    return body


def wire_request(case: AnyCase, token: str) -> requests.PreparedRequest:
    """The exact request schemathesis's own transport would send (it serializes with requests)."""
    kwargs = case.as_transport_kwargs(
        base_url=BASE_URL, headers={"Authorization": f"Bearer {token}"}
    )
    return requests.Request(**kwargs).prepare()


def describe(prepared: requests.PreparedRequest) -> str:
    shown = wire_body(prepared)[:300].decode(errors="replace")
    return f"{prepared.method} {prepared.url} {shown!r}"


def with_real_body_ids(case: AnyCase, owner: Owner) -> AnyCase:
    """The case with every id field of its JSON body naming one of the owner's objects."""
    if isinstance(case.body, dict):
        for name in case.body.keys() & {"agent_id", "conversation_id", "run_id"}:
            case.body[name] = owner.ids[name]
    return case


class Fuzzer:
    """Runs one operation's examples from a worker thread against the app on the loop."""

    def __init__(self, client: httpx.AsyncClient, bridge: LoopBridge, report: FuzzReport) -> None:
        self.client = client
        self.bridge = bridge
        self.report = report

    async def send(self, prepared: requests.PreparedRequest) -> httpx.Response:
        assert prepared.method is not None and prepared.url is not None
        headers = {
            name: value.decode("latin-1") if isinstance(value, bytes) else value
            for name, value in prepared.headers.items()
        }
        return await self.client.request(
            prepared.method, prepared.url, headers=headers, content=wire_body(prepared)
        )

    def exercise(self, case: AnyCase, owner: Owner) -> None:
        prepared = wire_request(case, owner.token)
        with server_log() as log:
            response = self.bridge.run(self.send(prepared))
        self.report.requests += 1
        self.report.statuses[case.operation.label][response.status_code] += 1
        for name, check in CHECKS.items():
            try:
                case.validate_response(response, checks=[check])
            except FailureGroup as group:
                reason = "; ".join(f"{f.title}: {f.message}"[:400] for f in group.exceptions)
                self.record(name, case, prepared, response, reason, log.text())
        if response.status_code >= 400:
            try:
                assert_envelope(response)
            except AssertionError as error:
                self.record("error_envelope", case, prepared, response, str(error), log.text())

    def record(
        self,
        check: str,
        case: AnyCase,
        prepared: requests.PreparedRequest,
        response: httpx.Response,
        reason: str,
        log: str,
    ) -> None:
        self.report.add(
            Violation(
                check=check,
                operation=case.operation.label,
                status=response.status_code,
                request=describe(prepared),
                response=response.text[:300],
                reason=reason,
                server_log=log,
            )
        )

    def fuzz(self, operation: Operation, owner: Owner) -> None:
        real_ids = {
            p.name: owner.ids[p.name] for p in operation.path_parameters if p.name in owner.ids
        }
        positive = operation.as_strategy(GenerationMode.POSITIVE)
        flavours: list[st.SearchStrategy[AnyCase]] = [positive]
        if real_ids or operation.body:
            real = operation.as_strategy(path_parameters=real_ids) if real_ids else positive
            flavours.append(real.map(lambda case: with_real_body_ids(case, owner)))
        flavours.append(operation.as_strategy(GenerationMode.NEGATIVE))
        for strategy in flavours:
            self.run_examples(strategy, owner)

    def run_examples(self, strategy: st.SearchStrategy[AnyCase], owner: Owner) -> None:
        @HYPOTHESIS
        @given(case=strategy)
        def examples(case: AnyCase) -> None:
            self.exercise(case, owner)

        # Unsatisfiable: nothing in this operation can be made invalid (no constrained input).
        with contextlib.suppress(Unsatisfiable):
            examples()


@pytest.fixture(scope="module")
async def fuzz_report(app: FastAPI) -> AsyncIterator[FuzzReport]:
    """Fuzzes every operation once per backend; the tests below read one check each."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    # An operation schemathesis cannot load is missing here: test_every_operation_is_fuzzed.
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    report = FuzzReport(operations=[op.label for op in operations])
    clients: list[httpx.AsyncClient] = []
    owners: list[Owner] = []
    for _ in operations:
        client = guest_client(app)
        clients.append(client)
        await sign_in(client)
        owners.append(await seed_owner(client, app))
    sender = guest_client(app)  # anonymous: each request carries its owner's bearer token
    clients.append(sender)
    fuzzer = Fuzzer(sender, LoopBridge(asyncio.get_running_loop()), report)

    def fuzz_all() -> None:
        for operation, owner in zip(operations, owners, strict=True):
            fuzzer.fuzz(operation, owner)

    try:
        await asyncio.wait_for(asyncio.to_thread(fuzz_all), timeout=20 * REQUEST_TIMEOUT)
        yield report
    finally:
        for client in clients:
            await client.aclose()


def assert_clean(report: FuzzReport, check: str) -> None:
    assert report.requests >= EXAMPLES * len(report.operations)  # the fuzzing really ran
    violations = report.violations.get(check, {})
    assert not violations, f"{len(violations)} violation(s):\n\n{report.of(check)}"


async def test_every_operation_is_fuzzed(fuzz_report: FuzzReport, app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    expected = {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    assert set(fuzz_report.operations) == expected
    assert len(expected) >= 24


async def test_every_operation_succeeds_sometimes(fuzz_report: FuzzReport) -> None:
    """The fuzzing reached every handler, not only the validation in front of it."""
    never = {
        op: dict(statuses)
        for op, statuses in fuzz_report.statuses.items()
        if not any(200 <= status < 300 for status in statuses)
    }
    assert not never, never


async def test_no_server_errors(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "not_a_server_error")


async def test_invalid_input_is_refused(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "negative_data_rejection")


async def test_status_codes_are_documented(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "status_code_conformance")


async def test_content_types_are_documented(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "content_type_conformance")


async def test_bodies_match_the_documented_schema(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "response_schema_conformance")


async def test_headers_match_the_documented_schema(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "response_headers_conformance")


async def test_errors_use_the_envelope(fuzz_report: FuzzReport) -> None:
    assert_clean(fuzz_report, "error_envelope")
