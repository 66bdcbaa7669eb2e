from tests.fixtures.moto_server import moto_server  # noqa: F401  (session fixture: real S3 API on loopback)
