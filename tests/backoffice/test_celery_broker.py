from __future__ import annotations

import os

from backoffice import celery_app

QUEUE = "backoffice-tests-roundtrip"


def test_broker_is_redis_with_redis_url_else_the_filesystem():
    if os.environ.get("REDIS_URL"):
        assert celery_app.conf.broker_url.startswith("redis://")
    else:
        assert celery_app.conf.broker_url == "filesystem://"


def test_a_message_round_trips_through_the_configured_broker():
    with celery_app.connection_for_write() as conn:
        queue = conn.SimpleQueue(QUEUE)
        try:
            queue.clear()  # a previous run that died midway may have left a message
            queue.put({"hello": "broker"})
            message = queue.get(timeout=10)
            message.ack()
            assert message.payload == {"hello": "broker"}
        finally:
            queue.queue.delete()
            queue.close()
