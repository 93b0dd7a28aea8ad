"""Celery peer (issue 4): the same payload, square(x), with Redis as broker
and result backend. $TROUPE_BENCH_REDIS is the Redis URL."""
import os

from celery import Celery

URL = os.environ.get("TROUPE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("troupe_bench", broker=URL, backend=URL)
app.conf.update(
    task_serializer="msgpack",
    result_serializer="msgpack",
    accept_content=["msgpack", "json"],
    worker_prefetch_multiplier=64,
    task_acks_late=False,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task(name="square")
def square(x):
    return x * x
