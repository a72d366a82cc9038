"""mock-custodian: a faithful local simulator of PG&E's Share My Data data custodian."""

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - lazy, so importing the package stays cheap
    """``mock_custodian.running`` / ``start`` / ``RunningServer``: a real server for tests (see testing.py)."""
    if name in ("running", "start", "RunningServer"):
        from mock_custodian import testing

        return getattr(testing, name)
    raise AttributeError(f"module 'mock_custodian' has no attribute {name!r}")
