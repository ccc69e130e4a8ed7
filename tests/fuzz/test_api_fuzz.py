"""Schemathesis over both services' OpenAPI documents, as every role.

Each operation is fuzzed for each role (anonymous and one real user of every role) with a fixed
seed (`derandomize`), valid and invalid (negative) inputs, and a bounded number of examples per
operation (``HOMECHEF_FUZZ_EXAMPLES``, small in CI). The rules checked on every response:
no 5xx, and every 4xx is ``application/problem+json``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from tests.fuzz.conftest import FUZZ_EXAMPLES, ROLES
from tests.integration.core.conftest import CoreServer

PROBLEM_JSON = "application/problem+json"

EXCLUDED: frozenset[tuple[str, str]] = frozenset()
"""Operations not fuzzed (method, path). None at present: the static console and the WebSocket
endpoints are not in the OpenAPI documents; the sockets have their own fuzz (test_ws_fuzz)."""

DELIBERATE_5XX: dict[tuple[str, str], tuple[int, str]] = {
    ("POST", "/api/v1/auth/login/social"): (501, "urn:homechef:problem:social_login_unavailable"),
}
"""The one 5xx that is an answer, not a failure: a social provider that this deployment has not
configured is "501 Not Implemented" (a problem+json with this type), for every input."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    role: str
    operation: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.role}] {self.operation}: {self.detail}"


def fuzz_service(base_url: str, role_headers: dict[str, dict[str, str]],
                 known_ids: dict[str, str], max_examples: int) -> list[Finding]:
    """Fuzz every operation of the service at ``base_url`` as every role (blocking).

    Random path ids find nothing but 404s, so an operation with an id parameter of a real row
    (``known_ids``) is also fuzzed with that id (valid inputs, every role).
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    findings: list[Finding] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        known = {name: known_ids[name] for name in re.findall(r"{(\w+)}", operation.path)
                 if name in known_ids}
        for role in ROLES:
            headers = role_headers[role]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                findings.extend(_fuzz_operation(operation, mode, base_url, session, role,
                                                headers, max_examples))
            if known:
                findings.extend(_fuzz_operation(operation, GenerationMode.POSITIVE, base_url,
                                                session, role, headers, max_examples, known))
    return findings


def _fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str,
                    session: requests.Session, role: str, headers: dict[str, str],
                    max_examples: int, path_ids: dict[str, str] | None = None) -> list[Finding]:
    label = f"{operation.method.upper()} {operation.path} ({mode.value}"
    label += f", ids {sorted(path_ids)})" if path_ids else ")"
    findings: list[Finding] = []

    @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_ids))
    def run(case: schemathesis.Case) -> None:
        # schemathesis adds its own headers to the mapping it is given: pass a copy.
        response = case.call(base_url=base_url, session=session, headers=dict(headers),
                             timeout=15)
        if _deliberate(operation, response):
            return
        try:
            case.validate_response(response, checks=[not_a_server_error],
                                   headers=dict(headers))
        except FailureGroup as exc:
            findings.append(Finding(role=role, operation=label,
                                    detail=f"{exc}\n{case.as_curl_command(headers)}"))
            return
        if 400 <= response.status_code < 500:
            content_type = ",".join(response.headers.get("content-type", []))
            if not content_type.startswith(PROBLEM_JSON):
                findings.append(Finding(role=role, operation=label, detail=(
                    f"{response.status_code} with content-type {content_type!r}: "
                    f"{response.text[:200]}\n{case.as_curl_command(headers)}")))

    run()
    return findings


TIMEOUT_S = max(240, 60 * FUZZ_EXAMPLES)
"""Per service: about 30 s at the CI default of 4 examples; a longer run scales it."""


def _deliberate(operation: schemathesis.APIOperation, response: schemathesis.Response) -> bool:
    expected = DELIBERATE_5XX.get((operation.method.upper(), operation.path))
    if expected is None or response.status_code != expected[0]:
        return False
    try:
        problem_type = response.json().get("type")
    except ValueError:
        return False
    return bool(problem_type == expected[1])


def _report(findings: list[Finding]) -> str:
    unique = {(f.role, f.operation, f.detail.splitlines()[0]): f for f in findings}
    return "\n\n".join(str(f) for f in list(unique.values())[:30])


@pytest.mark.timeout(TIMEOUT_S)
async def test_core_api_fuzz(core_url: CoreServer, role_headers: dict[str, dict[str, str]],
                             known_ids: dict[str, str]) -> None:
    """No operation of core answers 5xx to any role, and every 4xx is problem+json."""
    findings = await asyncio.to_thread(fuzz_service, core_url.url, role_headers, known_ids,
                                       FUZZ_EXAMPLES)
    assert not findings, _report(findings)


@pytest.mark.timeout(TIMEOUT_S)
async def test_commerce_api_fuzz(commerce_url: str, role_headers: dict[str, dict[str, str]],
                                 known_ids: dict[str, str]) -> None:
    """No operation of commerce answers 5xx to any role, and every 4xx is problem+json."""
    findings = await asyncio.to_thread(fuzz_service, commerce_url, role_headers, known_ids,
                                       FUZZ_EXAMPLES)
    assert not findings, _report(findings)
