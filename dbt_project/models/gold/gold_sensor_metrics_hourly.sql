{{ config(**incremental_config(unique_key=['device_id', 'hour_at'])) }}

{%- set backfill = backfill_range() if is_incremental() else none %}
{%- set first_new_date = new_rows_first_date([ref('silver_readings')]) %}

with

silver_readings as (

    select * from {{ ref('silver_readings') }}

),

device_types as (

    select * from {{ ref('catalogue_device_types') }}
    where is_current

),

{% if backfill -%}

-- A backfill: every device-hour of the range, re-aggregated (the strategy clears the range first).
readings_to_aggregate as (

    select silver_readings.*
    from silver_readings
    where {{ in_backfill_range('silver_readings.event_date', backfill) }}

),

{%- elif is_incremental() -%}

{{ changed_periods(ref('silver_readings'), dbt.date_trunc('hour', 'silver_readings.event_at'), 'hour_at') }}

-- The late-data rule (silver read directly, not through the import CTE: see changed_periods):
-- re-aggregate exactly the device-hours whose silver readings changed.
readings_to_aggregate as (

    select silver_readings.*
    from {{ ref('silver_readings') }} as silver_readings
    where
        silver_readings.event_date in (select changed_periods.event_date from changed_periods)
        {%- if first_new_date %}
        -- Said again as a literal, which DuckDB prunes the scan with (see new_rows_first_date).
        and silver_readings.event_date >= {{ first_new_date }}
        {%- endif %}
        and {{ changed_units(
            'exists (select 1 from changed_periods where changed_periods.device_id = silver_readings.device_id '
            ~ 'and changed_periods.period_at = ' ~ dbt.date_trunc('hour', 'silver_readings.event_at') ~ ')'
        ) }}

),

{%- else -%}

readings_to_aggregate as (

    select * from silver_readings

),

{%- endif %}

metric_values as (

    {{ metric_values('readings_to_aggregate', ['device_id', 'device_type', 'site_id', 'event_at', 'ingested_at']) }}

),

hourly_aggregates as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        {{ dbt.date_trunc('hour', 'event_at') }} as hour_at,
        count(*) as reading_count,
        min(metric_value) as min_value,
        max(metric_value) as max_value,
        avg(metric_value) as avg_value,
        stddev_samp(metric_value) as stddev_value,
        {{ percentiles('metric_value', [0.5, 0.95]) }} as value_percentiles,
        max(ingested_at) as last_ingested_at

    from metric_values
    group by device_id, device_type, site_id, metric, {{ dbt.date_trunc('hour', 'event_at') }}

),

final as (

    select
        hourly_aggregates.device_id,
        hourly_aggregates.device_type,
        hourly_aggregates.site_id,
        hourly_aggregates.metric,
        hourly_aggregates.hour_at,
        hourly_aggregates.reading_count,
        hourly_aggregates.min_value,
        hourly_aggregates.max_value,
        hourly_aggregates.avg_value,
        hourly_aggregates.stddev_value,
        hourly_aggregates.value_percentiles[1] as p50_value,
        hourly_aggregates.value_percentiles[2] as p95_value,
        cast(3600 as double) / device_types.reporting_interval_s as expected_count,
        least(
            1.0,
            hourly_aggregates.reading_count / (cast(3600 as double) / device_types.reporting_interval_s)
        ) as completeness,
        hourly_aggregates.last_ingested_at,
        cast(hourly_aggregates.hour_at as date) as event_date

    from hourly_aggregates
    inner join device_types
        on hourly_aggregates.device_type = device_types.device_type

)

select * from final
