"""Kizen's published schemas, and the corrected copy the sandbox answers in.

``openapi/seed.json`` is Kizen's OpenAPI document for ``POST /api/activities/scheduled-activity``
exactly as published. Its read schema types several fields wrongly, so the sandbox applies
``openapi/corrections.json`` to it: each entry replaces one JSON pointer and says why. The result,
:data:`CORRECTED`, is what the sandbox's responses are checked against; requests are validated
against the seed's own write schema, unchanged.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema.protocols import Validator
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    oas30_format_checker,
)

Document = dict[str, Any]


def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath("openapi", name).read_text("utf-8"))


def seed() -> Document:
    """Kizen's document as published (a fresh copy)."""
    return dict(_load("seed.json"))


def corrections() -> list[dict[str, Any]]:
    """The corrections: ``{pointer, value, why}`` each."""
    return list(_load("corrections.json"))


def apply_corrections(document: Document, fixes: list[dict[str, Any]]) -> Document:
    """Returns a copy of ``document`` with each fix's value set at its JSON pointer."""
    result = copy.deepcopy(document)
    for fix in fixes:
        *parents, leaf = [part.replace("~1", "/").replace("~0", "~") for part in fix["pointer"].split("/")[1:]]
        node = result
        for part in parents:
            node = node[part]
        node[leaf] = copy.deepcopy(fix["value"])
    return result


CORRECTED: Document = apply_corrections(seed(), corrections())


@cache
def request_validator(component: str) -> Validator:
    """A validator for requests against the seed's own (uncorrected) ``component``."""
    document = seed()
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    validator: Validator = OAS30WriteValidator(schema, format_checker=oas30_format_checker)
    return validator


@cache
def response_validator(component: str) -> Validator:
    """A validator for responses against the corrected ``component``."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": CORRECTED["components"]}
    validator: Validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    return validator
