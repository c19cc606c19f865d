{# True when a double is NaN or +-infinity: such a value can never be inside a valid range. #}
{% macro is_not_finite(expression) -%}
    {{ return(adapter.dispatch('is_not_finite', 'lakehouse')(expression)) }}
{%- endmacro %}

{% macro default__is_not_finite(expression) -%}
    ({{ expression }} <> {{ expression }} or {{ expression }} in (cast('inf' as double), cast('-inf' as double)))
{%- endmacro %}

{% macro duckdb__is_not_finite(expression) -%}
    (not isfinite({{ expression }}))
{%- endmacro %}

{% macro athena__is_not_finite(expression) -%}
    (is_nan({{ expression }}) or is_infinite({{ expression }}))
{%- endmacro %}
