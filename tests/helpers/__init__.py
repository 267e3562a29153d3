"""What several test modules share, one module per tier or concern; import from the module.

tokens       the suite's tokens and request headers
environment  settings and the process environment a test runs under
databases    PostgreSQL databases of the test's own, outages, rows put in place directly
patients     the sample patients
api          requests and answers through chalice.test.Client, the OpenAPI document
waiting      polling, concurrency, real-socket calls, JSON log lines
processes    a Celery worker and ``chalice local`` in subprocesses
stack        the local stack, ``make run``
cold_start   what a cold start must not import
metrics      CloudWatch Embedded Metric Format lines

Fixtures live in tests/conftest.py; no test module imports another test module.
"""
