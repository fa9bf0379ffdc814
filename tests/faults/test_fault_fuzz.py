"""Fuzz the emulator from its own ``/api-spec.json`` with schemathesis: no request it can
generate may end in a 5xx (issue 6). A 5xx here is an emulator bug."""

from __future__ import annotations

import collections
import logging
from typing import Any

import anyio
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from aurous_async.testing import DOCUMENTED_BUCKETS, BucketSpec, run_emulator

pytestmark = pytest.mark.anyio

#: Examples per operation: about 40 operations, so ~500 requests in a few seconds.
EXAMPLES = 12
#: Buckets too big to empty, so the fuzzer reaches the handlers instead of 429s.
ROOMY = {name: BucketSpec(10**7, 10**7) for name in DOCUMENTED_BUCKETS}


def _fuzz(base_url: str, api_key: str) -> tuple[collections.Counter[int], list[str]]:
    """Run every operation of the spec (blocking; called in a worker thread)."""
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []
    with requests.Session() as session:
        raw = session.get(f"{base_url}/api-spec.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(raw)
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # a broken spec fails here

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case[Any]) -> None:
                response = case.call(
                    base_url=base_url,
                    headers={"X-Api-Key": api_key},
                    session=session,
                    timeout=10,
                )
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} query={case.query!r} "
                        f"body={case.body!r:.200} -> {response.status_code} {response.text:.200}"
                    )

            run()
    return statuses, failures


async def test_schema_driven_fuzzing_never_yields_a_5xx(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hundreds of generated requests over every operation: all answered below 500."""
    caplog.set_level(logging.ERROR, logger="aurous_async.testing")
    async with run_emulator(time_scale=100.0, buckets=ROOMY) as emu:
        statuses, failures = await anyio.to_thread.run_sync(_fuzz, emu.base_url, emu.api_key)
    assert failures == [], "\n".join(failures)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum(statuses.values()) >= 300
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) >= 50
