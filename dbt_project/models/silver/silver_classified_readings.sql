{{ config(**incremental_config(
    unique_key=['event_date', 'device_id', 'event_hour'], on_schema_change='append_new_columns'
)) }}

{%- set backfill = backfill_range() if is_incremental() else none %}
{%- set rebuild_dates = silver_dates_to_rebuild(ref('stg_bronze__readings'))
    if is_incremental() and not backfill else none %}

with

catalogue_devices as (

    select * from {{ ref('catalogue_devices') }}

),

catalogue_metrics as (

    select * from {{ ref('catalogue_metrics') }}

),

unit_conversions as (

    select * from {{ ref('unit_conversions') }}

),

{% if backfill -%}

-- A backfill: every device-day of the range, rebuilt from bronze (the strategy clears the range first).
readings_to_classify as (

    select * from {{ ref('stg_bronze__readings') }}
    where {{ in_backfill_range('event_date', backfill) }}

),

{%- elif is_incremental() -%}

-- Only device-hours whose bronze rows are not all classified yet (on Athena: all of a touched date).
-- The hour, not the day: a stream's new rows fill a few hours, and a day would reclassify far more.
-- Bronze is read by each of the two CTEs, not through one that both read: DuckDB would materialize every
-- column of every row of the touched dates, where the count needs three columns and the classification
-- only the rows of changed hours.
bronze_device_hours as (

    select
        event_date,
        device_id,
        {{ dbt.date_trunc('hour', 'event_at') }} as event_hour,
        count(*) as bronze_rows
    from {{ ref('stg_bronze__readings') }}
    where event_date in {{ date_list(rebuild_dates) }}
    group by event_date, device_id, {{ dbt.date_trunc('hour', 'event_at') }}

),

classified_device_hours as (

    select
        event_date,
        device_id,
        event_hour,
        count(*) as classified_rows
    from {{ this }}
    where event_date in {{ date_list(rebuild_dates) }}
    group by event_date, device_id, event_hour

),

device_hours_to_rebuild as (

    select
        bronze_device_hours.event_date,
        bronze_device_hours.device_id,
        bronze_device_hours.event_hour
    from bronze_device_hours
    left join classified_device_hours
        on
            bronze_device_hours.event_date = classified_device_hours.event_date
            and bronze_device_hours.device_id = classified_device_hours.device_id
            and bronze_device_hours.event_hour = classified_device_hours.event_hour
    where {{ changed_units(
        'classified_device_hours.classified_rows is null '
        ~ 'or classified_device_hours.classified_rows <> bronze_device_hours.bronze_rows'
    ) }}

),

readings_to_classify as (

    select bronze_readings.*
    from {{ ref('stg_bronze__readings') }} as bronze_readings
    inner join device_hours_to_rebuild
        on
            bronze_readings.event_date = device_hours_to_rebuild.event_date
            and bronze_readings.device_id = device_hours_to_rebuild.device_id
            and {{ dbt.date_trunc('hour', 'bronze_readings.event_at') }} = device_hours_to_rebuild.event_hour
    where bronze_readings.event_date in {{ date_list(rebuild_dates) }}

),

{%- else -%}

readings_to_classify as (

    select * from {{ ref('stg_bronze__readings') }}

),

{%- endif %}

{{ classify_readings('readings_to_classify', 'catalogue_devices', 'catalogue_metrics', 'unit_conversions') }}

final as (

    select
        device_id,
        device_type,
        site_id,
        registered_site_id,
        event_at,
        seq,
        {%- for metric in var('metrics') %}
        {{ metric }},
        {%- endfor %}
        battery_pct,
        firmware,
        unit_conversion,
        ingested_at,
        source_file,
        batch_id,
        schema_version,
        copy_number,
        rejection_reason,
        rejected_metric,
        {{ dbt.date_trunc('hour', 'event_at') }} as event_hour,
        event_date

    from classified_readings

)

select * from final
