"""The conformance suite: a package, so that its conftest does not clash
with clients/python/tests/conftest.py when pytest runs both."""
