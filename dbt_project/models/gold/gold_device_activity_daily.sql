{{ config(**incremental_config(unique_key=['device_id', 'event_date'])) }}

{#-
    What gold_device_health needs of a device's history, a row per device-day, so that health reads a
    few rows per device instead of every silver reading (it is rebuilt whole on every run).
-#}
{%- set backfill = backfill_range() if is_incremental() else none %}
{%- set first_new_date = new_rows_first_date([ref('silver_readings')]) %}

with

silver_readings as (

    select * from {{ ref('silver_readings') }}

),

{% if backfill -%}

-- A backfill: every device-day of the range (the strategy clears the range first).
readings_to_summarize as (

    select silver_readings.*
    from silver_readings
    where {{ in_backfill_range('silver_readings.event_date', backfill) }}

),

{%- elif is_incremental() -%}

{{ gold_rebuild_window() }}

-- The late-data rule: every device-day with a silver reading ingested since the last build (see
-- gold_rebuild_window) is summarized again (silver read directly: see changed_periods).
changed_device_days as (

    select distinct
        silver_readings.device_id,
        silver_readings.event_date
    from {{ ref('silver_readings') }} as silver_readings
    cross join rebuild_window
    where
        silver_readings.event_date >= rebuild_window.floor_date
        and silver_readings.ingested_at >= rebuild_window.since_ingested_at

),

readings_to_summarize as (

    select silver_readings.*
    from {{ ref('silver_readings') }} as silver_readings
    where
        silver_readings.event_date in (select changed_device_days.event_date from changed_device_days)
        {%- if first_new_date %}
        -- Said again as a literal, which DuckDB prunes the scan with (see new_rows_first_date).
        and silver_readings.event_date >= {{ first_new_date }}
        {%- endif %}
        and {{ changed_units(
            'exists (select 1 from changed_device_days where changed_device_days.device_id = '
            ~ 'silver_readings.device_id and changed_device_days.event_date = silver_readings.event_date)'
        ) }}

),

{%- else -%}

readings_to_summarize as (

    select * from silver_readings

),

{%- endif %}

final as (

    select
        readings_to_summarize.device_id,
        readings_to_summarize.device_type,
        readings_to_summarize.site_id,
        {{ device_activity_aggregates('readings_to_summarize') }},
        count(*) as reading_count,
        max(readings_to_summarize.ingested_at) as last_ingested_at,
        readings_to_summarize.event_date

    from readings_to_summarize
    group by
        readings_to_summarize.device_id,
        readings_to_summarize.device_type,
        readings_to_summarize.site_id,
        readings_to_summarize.event_date

)

select * from final
