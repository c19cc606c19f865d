{#
    The keyword that makes a CTE materialized (computed once, not inlined) where the engine has one:
    DuckDB's `as materialized (...)`; Trino/Athena have none (and plan CTEs their own way).
#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__materialized_cte() -%}
    materialized
{%- endmacro %}

{% macro athena__materialized_cte() -%}
{%- endmacro %}
