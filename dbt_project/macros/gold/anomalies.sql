{#
    When a point's score flags it, per anomaly kind (see gold_anomalies' description):
    threshold_breach past an alert limit (score > 0), zscore_outlier |z| from var anomaly_zscore_threshold,
    rate_of_change a jump beyond the allowed one (score > 1), flatline a run at least the minimum
    duration (score >= 1); `repeat`, not a kind of its own but what flatlines are made of, a value equal
    to the previous reading's (score 1).
#}
{% macro flag_condition(score, kind) -%}
    {%- if kind == 'threshold_breach' -%}
        {{ score }} > 0
    {%- elif kind == 'zscore_outlier' -%}
        {{ score }} >= {{ var('anomaly_zscore_threshold') }}
    {%- elif kind == 'rate_of_change' -%}
        {{ score }} > 1
    {%- elif kind in ('flatline', 'repeat') -%}
        {{ score }} >= 1
    {%- else -%}
        {{ exceptions.raise_compiler_error("flag_condition: unknown anomaly kind '" ~ kind ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{# A stable id for an anomaly window: the same window gets the same id on every build. #}
{% macro anomaly_id(device_id, metric, anomaly_kind, started_at) -%}
    {{ dbt.hash(dbt.concat([
        device_id, "'|'",
        "coalesce(" ~ metric ~ ", '-')", "'|'",
        anomaly_kind, "'|'",
        "cast(" ~ epoch_ms(started_at) ~ " as varchar)"
    ])) }}
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


{# The number of the z-score bucket (var anomaly_zscore_window_minutes long, from 1970-01-01) of a timestamp. #}
{% macro bucket_number(timestamp) -%}
    cast(floor(cast({{ epoch_ms(timestamp) }} as double) / {{ var('anomaly_zscore_window_minutes') * 60000 }}) as bigint)
{%- endmacro %}


{# The start of z-score bucket number `bucket` (see bucket_number) as a timestamp. #}
{% macro bucket_start(bucket) -%}
    {{ dbt.dateadd(
        'minute', '(' ~ bucket ~ ') * ' ~ var('anomaly_zscore_window_minutes'), timestamp_literal('1970-01-01 00:00:00')
    ) }}
{%- endmacro %}


{#
    Whether a window (the relation alias of a row with device_id, started_at and ended_at) meets an interval
    of gold_anomalies' incremental build (CTE island_intervals): the windows the new readings may change.
#}
{% macro window_meets_an_interval(window) -%}
    exists (
        select 1 from island_intervals
        where
            island_intervals.device_id = {{ window }}.device_id
            and {{ window }}.ended_at >= island_intervals.interval_start
            and {{ window }}.started_at <= island_intervals.interval_end
    )
{%- endmacro %}


{#
    The device-days an incremental build of gold_anomalies rebuilds, given a CTE of touched (device_id,
    event_date) pairs (with repeats): those not older than the lookback floor (CTE rebuild_window).
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
