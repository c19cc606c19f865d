"""Lint-time stand-ins for dbt's cross-database macros (``dbt.dateadd`` ...), rendering DuckDB SQL.

Only SQLFluff uses this module (``library_path`` in the repository's .sqlfluff); dbt itself never does.
"""


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def hash(field):  # noqa: A001 - the name of dbt's macro
    return f"md5(cast({field} as varchar))"


def concat(fields):
    return " || ".join(fields)


def split_part(string_text, delimiter_text, part_number):
    return f"split_part({string_text}, {delimiter_text}, {part_number})"
