{# A stable id for an anomaly window: the same window gets the same id on every build. #}
{% macro anomaly_id(device_id, metric, anomaly_kind, started_at) -%}
    {{ md5_hex(dbt.concat([
        device_id, "'|'",
        "coalesce(" ~ metric ~ ", '-')", "'|'",
        anomaly_kind, "'|'",
        "cast(" ~ epoch_ms(started_at) ~ " as varchar)"
    ])) }}
{%- endmacro %}


{#
    md5 of a text as 32 lowercase hex digits, the same on DuckDB and Athena (dbt's own hash() casts to
    the adapter's string type, TEXT on DuckDB).
#}
{% macro md5_hex(text) -%}
    {{ return(adapter.dispatch('md5_hex', 'lakehouse')(text)) }}
{%- endmacro %}

{% macro default__md5_hex(text) -%}
    md5(cast({{ text }} as varchar))
{%- endmacro %}

{% macro athena__md5_hex(text) -%}
    lower(to_hex(md5(to_utf8(cast({{ text }} as varchar)))))
{%- endmacro %}


{# info / warning / critical from a score and two thresholds. #}
{% macro severity(score, warning_at, critical_at) -%}
    case
        when {{ score }} >= {{ critical_at }} then 'critical'
        when {{ score }} >= {{ warning_at }} then 'warning'
        else 'info'
    end
{%- endmacro %}


{#
    |value - mean| / stddev of the other readings (given their count n, sum and sum of squares), the
    stddev floored at `floor` (so that a quiet signal does not make every small step an outlier).
#}
{% macro zscore(value, n, total, total_sq, floor) -%}
    abs({{ value }} - {{ total }} / {{ n }})
    / greatest(sqrt(greatest(({{ total_sq }} - {{ total }} * {{ total }} / {{ n }}) / ({{ n }} - 1), 0.0)), {{ floor }})
{%- endmacro %}


{# The number of the `minutes`-long time bucket (counted from 1970-01-01) that a timestamp falls in. #}
{% macro time_bucket(timestamp, minutes) -%}
    cast(floor(cast({{ epoch_ms(timestamp) }} as double) / {{ minutes * 60000 }}) as bigint)
{%- endmacro %}


{#
    The device-days an incremental build of gold_anomalies rebuilds (see anomaly_scope.sql), given a CTE of
    touched (device_id, event_date) pairs (with repeats): those not older than the lookback floor (CTE rebuild_window).
    DuckDB replaces exactly those (replace_units); Athena overwrites whole date partitions, so there every
    device with readings on a touched date (accepted, or rejected as out_of_range: silver_classified_readings)
    is rebuilt, or its windows of that date would be lost.
#}
{% macro anomaly_device_days_to_rebuild(touched, classified) -%}
    {{ return(adapter.dispatch('anomaly_device_days_to_rebuild', 'lakehouse')(touched, classified)) }}
{%- endmacro %}

{% macro default__anomaly_device_days_to_rebuild(touched, classified) -%}
    select distinct
        {{ touched }}.device_id,
        {{ touched }}.event_date
    from {{ touched }}
    where {{ touched }}.event_date >= (select rebuild_window.floor_date from rebuild_window)
{%- endmacro %}

{% macro athena__anomaly_device_days_to_rebuild(touched, classified) -%}
    select distinct
        classified_readings.device_id,
        classified_readings.event_date
    from {{ classified }} as classified_readings
    where
        classified_readings.event_date in (select {{ touched }}.event_date from {{ touched }})
        and classified_readings.event_date >= (select rebuild_window.floor_date from rebuild_window)
        and (classified_readings.rejection_reason is null or classified_readings.rejection_reason = 'out_of_range')
{%- endmacro %}
