with

silver_readings as (

    select * from {{ ref('silver_readings') }}

),

metric_limits as (

    select * from {{ ref('metric_limits') }}

),

metric_values as (

    {{ metric_values('silver_readings', ['device_id', 'device_type', 'site_id', 'event_date', 'event_at', 'seq']) }}

),

-- threshold_breach: a value beyond the alert limits of its device type and metric. The score is how far
-- past the alert limit it is, as a share of the way from the alert limit to the valid limit.
threshold_points as (

    select
        metric_values.*,
        case
            when metric_values.metric_value > metric_limits.alert_max
                then (metric_values.metric_value - metric_limits.alert_max)
                / nullif(metric_limits.valid_max - metric_limits.alert_max, 0)
            when metric_values.metric_value < metric_limits.alert_min
                then (metric_limits.alert_min - metric_values.metric_value)
                / nullif(metric_limits.alert_min - metric_limits.valid_min, 0)
        end as point_score

    from metric_values
    inner join metric_limits
        on
            metric_values.device_type = metric_limits.device_type
            and metric_values.metric = metric_limits.metric

),

threshold_flagged as (

    select
        *,
        coalesce(point_score >= 0, false) as is_flagged

    from threshold_points

),

{{ anomaly_windows('threshold_flagged', 'threshold_breach', 'threshold_breaches') }}

all_windows as (

    select
        *,
        {{ severity('score', 0.1, 0.5) }} as severity
    from threshold_breaches

),

final as (

    select
        {{ anomaly_id('device_id', 'metric', 'anomaly_kind', 'started_at') }} as anomaly_id,
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        started_at,
        ended_at,
        peak_value,
        score,
        severity,
        reading_count,
        event_date

    from all_windows

)

select * from final
