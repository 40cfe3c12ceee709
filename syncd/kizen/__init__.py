"""Kizen's activities API: a typed client and its payload models."""

from __future__ import annotations

from syncd.kizen.client import ActivitiesClient, Credentials, RetryPolicy, http_client
from syncd.kizen.models import (
    ActivityType,
    Contact,
    Employee,
    EntityLink,
    LoggedActivity,
    LogReceipt,
    LogRequest,
    NewScheduledActivity,
    Notification,
    ObjectRef,
    ScheduledActivity,
    ScheduledActivityChanges,
    ScheduledActivitySummary,
)

__all__ = [
    "ActivitiesClient",
    "ActivityType",
    "Contact",
    "Credentials",
    "Employee",
    "EntityLink",
    "LogReceipt",
    "LogRequest",
    "LoggedActivity",
    "NewScheduledActivity",
    "Notification",
    "ObjectRef",
    "RetryPolicy",
    "ScheduledActivity",
    "ScheduledActivityChanges",
    "ScheduledActivitySummary",
    "http_client",
]
