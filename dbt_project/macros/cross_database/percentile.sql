{#
    The p-th percentile of a numeric expression inside an aggregate. DuckDB computes it exactly
    (continuous, interpolated like numpy's default); Athena only has approx_percentile.
#}
{% macro percentile(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'lakehouse')(expression, fraction)) }}
{%- endmacro %}

{% macro default__percentile(expression, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__percentile(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}

{% macro athena__percentile(expression, fraction) -%}
    approx_percentile({{ expression }}, {{ fraction }})
{%- endmacro %}
