"""A local, faithful emulator of the part of Kizen's API that syncd uses.

Kizen is a hosted service no test can reach, so syncd ships this stand-in: the same paths, the
three auth headers, payloads, envelope and error shapes as Kizen (see the project's notes on the
Kizen API). It offers nothing the real API lacks: no etags, no modified-since filter, no
idempotency keys, no details in list results. Unknown query parameters are ignored, as Django
REST framework ignores them, so a client that sends a filter Kizen lacks learns nothing from it.

Where Kizen's behaviour is unknown, the sandbox takes the stricter choice. Each one:

Scheduled activities
  - ``due_datetime`` is required on create and PUT (the published schema marks it optional; Kizen's
    own examples always send it). Date-times must carry a UTC offset: a naive value is refused.
  - One of ``activity_object_id`` / ``activity_object_name`` (the type's display name) is required;
    both may be sent only if they name the same type. Neither can change after creation.
  - An activity must be assigned: ``employee_id`` or ``role_id`` (or both); neither is a 400.
  - ``original_due_datetime`` is taken on create only (``due_datetime`` when left out); a PATCH or
    PUT that sends it is refused, so a client cannot come to rely on rewriting it.
  - PUT replaces every writable field: those left out fall back to their defaults (empty note,
    no mentions, notifications or associated entities).
  - A completed scheduled activity refuses PATCH, PUT and DELETE (400, code ``activity_completed``).
  - DELETE answers 204 and removes the activity for good (Kizen's soft or hard delete is unknown;
    either way it is gone from the API).
  - ``associated_entities``: ``custom_object`` by id, name or object name; a contact ``entity`` by
    id, or by ``name`` holding the contact's email, matched exactly (case-sensitive).

The list (``GET /api/activities/scheduled-activity``)
  - ``from_date`` / ``to_date`` filter ``due_datetime``, and both bounds are **exclusive**: a
    client must widen its window to be sure of an activity due exactly at a bound. Each takes an
    RFC 3339 date-time with an offset, or a date (midnight UTC); anything else is a 400 whose
    envelope lists the problem in ``errors``.
  - ``employee_ids`` is a comma list of UUIDs, in either case (``activity_id`` likewise);
    ``completed`` is ``true``/``false``; left out, completed and open activities both come back.
  - ``search`` matches the note, or the activity type's name, case-insensitively.
  - ``ordering`` takes ``due_datetime``, ``completed_at``, ``created`` with an optional ``-``;
    anything else falls back to ``due_datetime`` (ties in creation order).
  - ``activity_id`` and ``activity_name`` filter the type; sending both is a 400.
  - Pages are offsets: ``page`` from 1, ``page_size`` default 100, clamped to 1000 (a page size
    that is not a positive integer means the default, as in Django REST framework); a page past
    the end, or a ``page`` that is not a positive integer, is a 404 ``Invalid page.``;
    ``next``/``previous`` are absolute URLs. Items created or deleted while a client pages can
    shift between pages, as with any offset pagination.

Logging
  - ``POST /api/activities/{type}/log-activity`` needs ``related_objects`` (``[]`` allowed, one
    record per object); a type's required fields must have a value; a disabled type refuses.
  - With ``scheduled_activity_id``, that activity must be open and of the same type; it is
    completed (``completed_at``, ``logged_activity_id``) in the same transaction.
  - Logged activities cannot be changed or deleted (405); ``GET /api/activities/logged`` is 404.
  - ``POST /api/activities/{type}/responses`` lists a type's logged activities, oldest first,
    filtered by the body's ``search`` (notes) and ``custom_object_id``; paged as above.
  - Each log posts the ``activity.logged`` webhook once, without retries or signature, to the
    type's ``webhook_url``, from a background thread after the log is committed. The body is
    ``{"event", "logged_activity_id", "activity_object": {id, api_name}, "scheduled_activity_id"}``.

Everything else
  - A missing auth header is 401 ``not_authenticated``; a wrong one is 401 ``authentication_failed``.
  - Bodies over the business's ``max_body_bytes`` (default 2.5 MB, Django's limit) are 413,
    checked before authentication, as a proxy would.
  - A body that is not ``application/json`` is 415; malformed JSON is 400 ``parse_error``; a
    JSON value that is not an object is 400 ``non_field_errors``. An empty body is ``{}``,
    whatever its Content-Type (Django REST framework parses nothing then).
  - Field errors are Django REST framework's: ``{"field": ["message", ...]}``, nested for items.
  - ``GET /api/team`` is a bare array unless ``page_size`` or ``search`` is given; a key without
    the all-team-members permission (``team_visible = false``) sees only its own user.
  - Contact look-up matches the email exactly, case-sensitively; no match is 404.
  - Injected 502 and 503 answers are HTML, as a proxy in front of Kizen would send.
"""

from __future__ import annotations

from syncd.sandbox.emulator import Sandbox
from syncd.sandbox.faults import Fault, FaultPlan
from syncd.sandbox.world import World, load_world

__all__ = ["Fault", "FaultPlan", "Sandbox", "World", "load_world"]
