"""mock-custodian: a faithful local simulator of PG&E's Share My Data data custodian."""

__version__ = "0.1.0"
