"""Test processes share the machine's Redis: each claims databases of its own (harness.py)."""

from __future__ import annotations

import redis
from harness import REDIS_CLAIM_KEY, claimed_redis_database


def test_two_claims_never_share_a_database():
    with claimed_redis_database() as first, claimed_redis_database() as second:
        assert first != second
        with redis.Redis.from_url(first) as a, redis.Redis.from_url(second) as b:
            a.set("written-by-first", "1")
            assert b.get("written-by-first") is None


def test_a_claimed_database_is_given_back_empty():
    with claimed_redis_database() as url, redis.Redis.from_url(url) as client:
        client.set("left-by-a-test", "1")
    with redis.Redis.from_url(url) as client:
        assert client.dbsize() == 0 and client.get(REDIS_CLAIM_KEY) is None
