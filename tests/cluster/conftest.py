"""Multi-node tests: real redis-server processes and real ``rtchub serve`` nodes.

Every test here is marked ``cluster`` (and ``redis``); they are skipped, with the reason,
when redis-server is not installed. ``-m "not cluster"`` leaves them out.
"""

from __future__ import annotations

import pytest

from tests.cluster.redis import redis_missing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/cluster/, and skip them without redis-server."""
    reason = redis_missing()
    for item in items:
        if "tests/cluster/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.redis)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
