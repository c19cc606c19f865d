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


{#
    Several percentiles of one expression in a single pass, as an array (1-based: [1] is the first
    fraction). DuckDB sorts the values once for all fractions, which is much faster than one
    quantile_cont per fraction.
#}
{% macro percentiles(expression, fractions) -%}
    {{ return(adapter.dispatch('percentiles', 'lakehouse')(expression, fractions)) }}
{%- endmacro %}

{% macro default__percentiles(expression, fractions) -%}
    array[{% for fraction in fractions %}{{ percentile(expression, fraction) }}{{ ', ' if not loop.last }}{% endfor %}]
{%- endmacro %}

{% macro duckdb__percentiles(expression, fractions) -%}
    quantile_cont({{ expression }}, [{{ fractions | join(', ') }}])
{%- endmacro %}

{% macro athena__percentiles(expression, fractions) -%}
    approx_percentile({{ expression }}, array[{{ fractions | join(', ') }}])
{%- endmacro %}
