"""Errors a user can act on. The CLI prints their message (no traceback) and exits with ``exit_code``."""


class LakehouseError(Exception):
    """Something the user can fix; the message says what, where, and how."""

    exit_code = 2


class GateFailed(LakehouseError):
    """A Great Expectations gate found an error-severity failure; later layers were not built."""

    exit_code = 3


class StepFailed(LakehouseError):
    """A pipeline step (Spark, dbt) failed; its own output says why."""

    exit_code = 4
