"""Lint-time stand-in for dbt's ``adapter.dispatch``: macros dispatched per adapter render as a plain
function call ``<name>(<arguments>)`` (config macros as an empty config), which is enough for SQLFluff
to parse the model. Only SQLFluff uses this module (``library_path`` in .sqlfluff)."""

# Macros that render a whole query over the CTE named by their first argument.
QUERY_MACROS = {"anomaly_device_days_to_rebuild"}


def dispatch(macro_name, macro_namespace=None):
    if macro_name.endswith("_config"):
        return lambda *args, **kwargs: {}
    if macro_name == "emits_scope_rows":
        return lambda *args, **kwargs: True
    if macro_name == "materialized_cte":
        return lambda *args, **kwargs: "materialized"
    if macro_name in QUERY_MACROS:
        return lambda *args, **kwargs: f"select * from {args[0]}"

    def render(*args, **kwargs):
        return f"{macro_name}({', '.join(str(a) for a in args)})"

    return render
