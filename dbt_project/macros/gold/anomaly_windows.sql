{#
    Turns flagged points into anomaly windows: consecutive flagged points of one device and metric on
    one UTC day form a window (an unflagged point in between ends it). Windows never span midnight, so a
    day of one device can be rebuilt on its own; a fault lasting longer shows as one window per day.

    `points` must have: device_id, device_type, site_id, metric, event_date, event_at, seq,
    metric_value, ingested_at, is_flagged (boolean), point_score (double, the strength of the point's
    anomaly).
    Emits the CTEs `<name>_islands` and `<name>` (each followed by a comma); `<name>` has the
    gold_anomalies columns except anomaly_id and severity.
#}
{% macro anomaly_windows(points, kind, name) -%}

{{ name }}_islands as (

    select
        *,
        sum(case when is_flagged and not coalesce(previous_is_flagged, false) then 1 else 0 end) over (
            partition by device_id, metric, event_date
            order by event_at, seq
            rows between unbounded preceding and current row
        ) as island_number

    from (
        select
            *,
            lag(is_flagged) over (
                partition by device_id, metric, event_date
                order by event_at, seq
            ) as previous_is_flagged
        from {{ points }}
    ) as points_with_previous

),

{{ name }} as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        cast('{{ kind }}' as varchar) as anomaly_kind,
        event_date,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        max_by(metric_value, point_score) as peak_value,
        max(point_score) as score,
        count(*) as reading_count,
        max(ingested_at) as last_ingested_at

    from {{ name }}_islands
    where is_flagged
    group by device_id, device_type, site_id, metric, event_date, island_number

),

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
