"""Python actors for the Python-worker benchmarks (bench/run.py --only pyworker).

``squares.square(x)`` is the method every worker in that section serves (the
C++ examples worker, bench/py_raw_worker.py and this module under
``python3 -m troupe.worker``), so the load generator sends byte-identical
requests to all of them.
"""
import troupe


@troupe.actor("squares")
class Squares:
    def square(self, x: int) -> int:
        return x * x
