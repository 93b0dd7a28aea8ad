"""Apply a vectorized function over arrays with a pool of C++ worker processes.

`vectorize.apply(xs)` maps x -> x + 1 if x > 2 else x - 1 over a list of
floats: the function lives in the worker executable (the np.vectorize case
without pickling a vectorized object into every process). The arrays are
sent as plain MessagePack data; up to `window` calls run at once across
the pool.

    /usr/bin/python3 examples/python/vectorize_apply.py            # starts its own pool
    /usr/bin/python3 examples/python/vectorize_apply.py --broker tcp://127.0.0.1:5555
"""

from __future__ import annotations

from _pool import parse_args, pool, troupe


def main() -> None:
    opts = parse_args(__doc__.splitlines()[0])
    arrays = [[1.0, 2.5, 3.0, -4.0], [0.0, 10.0], [float(i) / 2 for i in range(10)], []]
    with pool(opts.broker, opts.processes) as endpoint, troupe.Client(endpoint, timeout=10) as client:
        # each item is one list argument (a tuple would be an argument list)
        results = client.map("vectorize", "apply", arrays, window=4)
        for xs, ys in zip(arrays, results):
            print(f"apply({xs}) = {ys}")


if __name__ == "__main__":
    main()
