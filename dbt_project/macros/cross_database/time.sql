{# Milliseconds since 1970-01-01 UTC of a timestamp, as a bigint. #}
{% macro epoch_ms(timestamp) -%}
    {{ return(adapter.dispatch('epoch_ms', 'lakehouse')(timestamp)) }}
{%- endmacro %}

{% macro default__epoch_ms(timestamp) -%}
    cast(extract(epoch from {{ timestamp }}) * 1000 as bigint)
{%- endmacro %}

{% macro duckdb__epoch_ms(timestamp) -%}
    epoch_ms({{ timestamp }})
{%- endmacro %}

{% macro athena__epoch_ms(timestamp) -%}
    cast(floor(to_unixtime({{ timestamp }}) * 1000) as bigint)
{%- endmacro %}

{# Seconds (a double) from one timestamp to a later one. #}
{% macro seconds_between(earlier, later) -%}
    (cast({{ epoch_ms(later) }} - {{ epoch_ms(earlier) }} as double) / 1000)
{%- endmacro %}

{# A UTC timestamp literal from 'YYYY-MM-DD HH:MM:SS' text. #}
{% macro timestamp_literal(text) -%}
    cast('{{ text }}' as timestamp)
{%- endmacro %}

{#
    The build's reference time as SQL: var('reference_time') when set, else the run's start time.
    Used for the late-data lookback.
#}
{% macro build_reference_time() -%}
    {%- if var('reference_time', none) -%}
        {{ timestamp_literal(var('reference_time')) }}
    {%- else -%}
        {{ timestamp_literal(run_started_at.strftime('%Y-%m-%d %H:%M:%S')) }}
    {%- endif -%}
{%- endmacro %}
