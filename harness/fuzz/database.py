"""Where hypothesis keeps the examples a campaign found (``fuzz --database``).

- nothing given: ``hypothesis/`` in the report directory, as before;
- ``redis://HOST:PORT/N``: hypothesis's own ``RedisExampleDatabase`` over a Redis database,
  so that campaigns on several machines share what each found, and each replays the
  others' findings first (the driver's first round reuses the database);
- anything else: a directory (``DirectoryBasedExampleDatabase``), which a shared file
  system can share too.

The examples are keyed by hypothesis from the test and the fuzzed family (or handler),
so campaigns of different families share a database without mixing their cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import UsageError

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_database(spec: str | None, report_dir: Path) -> Any:
    """The example database ``spec`` names; ``UsageError`` when it cannot be used.

    A Redis database is asked for a ``PING`` at once, so a wrong address fails before
    the campaign starts rather than after it.
    """
    from hypothesis.database import DirectoryBasedExampleDatabase

    if spec is None:
        return DirectoryBasedExampleDatabase(str(Path(report_dir) / "hypothesis"))
    if spec.startswith(REDIS_SCHEMES):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as exc:
            raise UsageError(
                f"--database {spec}: needs the redis client ({exc.name} is not installed: "
                "pip install 'socketserver-harness[redis]')"
            ) from None
        try:
            client = redis.Redis.from_url(spec, socket_connect_timeout=5, socket_timeout=30)
            client.ping()
        except (ValueError, redis.RedisError) as exc:
            raise UsageError(f"--database {spec}: cannot use it ({exc})") from None
        return RedisExampleDatabase(client)
    path = Path(spec).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--database {spec}: cannot make the directory ({exc})") from None
    return DirectoryBasedExampleDatabase(str(path))
