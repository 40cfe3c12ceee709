"""Creates per second through the activities client into the sandbox, request validation on.

Run: python benchmarks/sandbox_creates.py [--count N]

Measures the whole path syncd uses (pydantic model -> httpx -> sandbox: schema validation,
semantic checks, SQLite write -> read shape -> pydantic parse), in-process and over loopback
keep-alive HTTP, with the sandbox's activities in a SQLite file as the embedded default keeps
them. Aim on a 2-core machine: 500/s in-process, 300/s over loopback.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from syncd.kizen import ActivitiesClient, Credentials, NewScheduledActivity, http_client
from syncd.sandbox import Sandbox


def creates_per_second(client: ActivitiesClient, box: Sandbox, count: int) -> float:
    activity_type = box.world.activity_types[0].id
    employee = box.world.api_user.id
    start = datetime(2030, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    for n in range(count):
        client.create(
            NewScheduledActivity(
                activity_object_id=activity_type,
                due_datetime=start + timedelta(minutes=n),
                employee_id=employee,
                note=f"Benchmark activity {n}\nsyncd: bench/{n}",
            )
        )
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("in-process", "loopback"):
            with Sandbox(data=Path(tmp) / f"{mode}.sqlite") as box:
                credentials = Credentials(
                    SecretStr(box.world.business.api_key), str(box.world.business.id), str(box.world.api_user.id)
                )
                if mode == "in-process":
                    http = http_client("http://sandbox.local", transport=box.transport())
                else:
                    http = http_client(box.serve().url)
                with http:
                    client = ActivitiesClient(http, credentials)
                    creates_per_second(client, box, 50)  # warm up: imports, validators, connection
                    rate = creates_per_second(client, box, args.count)
                print(f"{mode:>10}: {rate:7.0f} creates/s ({args.count} creates)")


if __name__ == "__main__":
    main()
