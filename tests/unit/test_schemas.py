"""The corrected copy of Kizen's published schemas: each correction listed, needed, and applied."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.sandbox import Sandbox, schemas
from syncd.sandbox.schemas import CORRECTED, apply_corrections, corrections, seed
from tests.conftest import new_activity


def _at(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.split("/")[1:]:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def test_every_correction_says_why_and_changes_something() -> None:
    fixes = corrections()
    assert len(fixes) >= 8
    for fix in fixes:
        assert fix["why"].strip(), fix["pointer"]
        assert _at(seed(), fix["pointer"]) != fix["value"], fix["pointer"]
        assert _at(CORRECTED, fix["pointer"]) == fix["value"], fix["pointer"]


def test_the_corrections_are_the_only_differences_from_the_seed() -> None:
    original = seed()
    reverted = apply_corrections(
        CORRECTED, [{"pointer": f["pointer"], "value": _at(original, f["pointer"])} for f in corrections()]
    )
    # A pointer the seed lacked comes back as None; drop those additions before comparing.
    added = [f["pointer"] for f in corrections() if _at(original, f["pointer"]) is None]
    for pointer in added:
        *parents, leaf = pointer.split("/")[1:]
        node = reverted
        for part in parents:
            node = node[part]
        del node[leaf]
    assert reverted == original


def test_the_write_schema_is_the_seeds_own() -> None:
    corrected_write = CORRECTED["components"]["schemas"]["ScheduledActivityV2WriteRequest"]
    assert corrected_write == seed()["components"]["schemas"]["ScheduledActivityV2WriteRequest"]


@pytest.mark.parametrize(
    "field",
    [
        "activity_object",
        "employee",
        "mentions",
        "notifications",
        "associated_fields",
        "completed_at",
        "logged_activity_id",
        "role",
    ],
)
def test_the_published_read_schema_rejects_a_real_answer_that_the_corrected_one_accepts(field: str) -> None:
    with Sandbox() as box:
        body = box.service.create_scheduled(new_activity())
    assert not list(schemas.response_validator("ScheduledActivityV2Read").iter_errors(body))
    document = seed()
    published = schemas.OAS30ReadValidator(
        {"$ref": "#/components/schemas/ScheduledActivityV2Read", "components": document["components"]},
        format_checker=schemas.oas30_format_checker,
    )
    failing = {str(e.absolute_path[0]) for e in published.iter_errors(body) if e.absolute_path}
    assert field in failing
