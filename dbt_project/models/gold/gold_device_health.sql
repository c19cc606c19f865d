{#-
    A device's history comes from gold_device_activity_daily (a row per device-day) and only the last
    two days from silver itself: this model is rebuilt whole on every run, so it must not read every
    silver reading. silver_readings is read directly by each CTE, not through an import CTE that DuckDB
    would materialize whole.
-#}

with

device_activity as (

    select * from {{ ref('gold_device_activity_daily') }}

),

device_types as (

    select * from {{ ref('catalogue_device_types') }}
    where is_current

),

gold_anomalies as (

    select * from {{ ref('gold_anomalies') }}

),

-- The moment health is judged at: var('reference_time'), or the fleet's latest accepted reading (so a
-- replayed or demo data set is judged by its own clock, not by the wall clock of the build).
as_of as (

    {%- set reference_time = var('reference_time', none) %}
    select
        coalesce(
            {{ timestamp_literal(reference_time) if reference_time else 'cast(null as timestamp)' }},
            max(last_event_at)
        ) as as_of_at
    from device_activity

),

recent_readings as (

    select silver_readings.*
    from {{ ref('silver_readings') }} as silver_readings
    where
        silver_readings.event_date
        between (select cast({{ dbt.dateadd('hour', -24, 'as_of.as_of_at') }} as date) from as_of)
        and (select cast(as_of.as_of_at as date) from as_of)
        and silver_readings.event_at <= (select as_of.as_of_at from as_of)
        and silver_readings.event_at > (select {{ dbt.dateadd('hour', -24, 'as_of.as_of_at') }} from as_of)

),

-- The device-days before the reference time's date as summarized, and that date's readings up to the
-- reference time summarized the same way.
activity_until_as_of as (

    select
        device_id,
        device_type,
        site_id,
        first_event_at,
        last_event_at,
        last_battery_at,
        last_battery_pct
    from device_activity
    where event_date < (select cast(as_of.as_of_at as date) from as_of)

    union all

    select
        silver_readings.device_id,
        silver_readings.device_type,
        silver_readings.site_id,
        {{ device_activity_aggregates('silver_readings') }}
    from {{ ref('silver_readings') }} as silver_readings
    where
        silver_readings.event_date = (select cast(as_of.as_of_at as date) from as_of)
        and silver_readings.event_at <= (select as_of.as_of_at from as_of)
    group by silver_readings.device_id, silver_readings.device_type, silver_readings.site_id

),

device_last_seen as (

    select
        device_id,
        device_type,
        site_id,
        min(first_event_at) as first_seen_at,
        max(last_event_at) as last_seen_at,
        max_by(last_battery_pct, last_battery_at) as battery_pct

    from activity_until_as_of
    group by device_id, device_type, site_id

),

device_recent as (

    select
        device_id,
        count(*) as readings_24h,
        count(distinct {{ dbt.date_trunc('hour', 'event_at') }}) as hours_with_readings_24h

    from recent_readings
    group by device_id

),

open_anomalies as (

    -- An anomaly is open while its window reaches the device's last reading: nothing normal since.
    select
        gold_anomalies.device_id,
        count(*) as open_anomalies,
        sum(case when gold_anomalies.severity = 'critical' then 1 else 0 end) as open_critical_anomalies

    from gold_anomalies
    inner join device_last_seen
        on gold_anomalies.device_id = device_last_seen.device_id
    where gold_anomalies.ended_at >= device_last_seen.last_seen_at
    group by gold_anomalies.device_id

),

measured as (

    select
        device_last_seen.device_id,
        device_last_seen.device_type,
        device_last_seen.site_id,
        device_last_seen.last_seen_at,
        coalesce(device_recent.readings_24h, 0) as readings_24h,
        -- Expected readings over the part of the last 24 hours the device has been reporting in.
        {{ seconds_between(
            'greatest(device_last_seen.first_seen_at, ' ~ dbt.dateadd('hour', -24, 'as_of.as_of_at') ~ ')',
            'as_of.as_of_at'
        ) }} / device_types.reporting_interval_s as expected_readings_24h,
        cast(coalesce(device_recent.hours_with_readings_24h, 0) as double) / 24 as uptime_24h,
        device_last_seen.battery_pct,
        coalesce(open_anomalies.open_anomalies, 0) as open_anomalies,
        coalesce(open_anomalies.open_critical_anomalies, 0) as open_critical_anomalies,
        {{ seconds_between('device_last_seen.last_seen_at', 'as_of.as_of_at') }} > device_types.silence_after_s
            as is_silent,
        as_of.as_of_at

    from device_last_seen
    cross join as_of
    inner join device_types
        on device_last_seen.device_type = device_types.device_type
    left join device_recent
        on device_last_seen.device_id = device_recent.device_id
    left join open_anomalies
        on device_last_seen.device_id = open_anomalies.device_id

),

final as (

    select
        device_id,
        device_type,
        site_id,
        last_seen_at,
        readings_24h,
        least(1.0, readings_24h / greatest(expected_readings_24h, 1.0)) as completeness_24h,
        uptime_24h,
        battery_pct,
        open_anomalies,
        case
            when is_silent then 'silent'
            when open_critical_anomalies > 0 or battery_pct < 10 then 'critical'
            when
                open_anomalies > 0
                or battery_pct < 20
                or readings_24h < 0.8 * greatest(expected_readings_24h, 1.0)
                then 'degraded'
            else 'healthy'
        end as health_status,
        as_of_at

    from measured

)

select * from final
