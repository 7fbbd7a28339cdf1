"""The version of mmate_fast, defined once: the package's ``__version__``, the AMQP client properties
sent to the broker, the OpenTelemetry tracer version and the distribution's version (pyproject.toml
reads it with setuptools' ``attr:``, without importing the package)."""

__version__ = "0.1.0"
