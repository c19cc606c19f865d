{#
    Which device-days gold_anomalies rebuilds, and which readings it reads to do so: the rebuild scope,
    kept apart from what an anomaly is (the model).

    The rule that makes an incremental build equal a full refresh: every window belongs to one device-day
    (the day of its readings; a data_gap to the day of the reading that ends it) and depends only on the
    device's readings from `anomaly_context_days()` days before that day to its end, plus the device's
    last reading before those (the start of a silence). So:
    - a reading ingested since the last build (new, late or re-published) on day d changes the windows of
      the days d .. d + context days (their trailing baselines reach back to it), and of day d - 1 when it
      lies within the short z-score neighbourhood of midnight;
    - those device-days are rebuilt whole, from the readings of their context;
    - a backfill rebuilds every device-day of its range, from the range and its context.

    Emits the CTEs `rebuild_device_days` (device_id, event_date), `readings` (silver_readings rows of the
    context, with `is_context_predecessor` for the last reading before it) and `rejected_to_scan` (the
    out_of_range rejected rows of the context), each followed by a comma.
#}

{# Whole days of readings before a rebuilt day that its windows depend on: the trailing baseline. #}
{% macro anomaly_context_days() -%}
    {%- set baseline_minutes = var('anomaly_baseline_hours') * 60 + var('anomaly_zscore_window_minutes') * 2 -%}
    {{ return(((baseline_minutes / 1440.0) | round(0, 'ceil') | int)) }}
{%- endmacro %}


{% macro anomaly_rebuild_scope() -%}
    {%- set backfill = backfill_range() if is_incremental() else none %}
    {%- set context_days = anomaly_context_days() %}
    {%- set reach_minutes = 2 * var('anomaly_zscore_window_minutes') %}
    {%- if backfill %}

-- A backfill: every device-day of the range.
rebuild_device_days as (

    select distinct
        device_id,
        event_date
    from {{ ref('silver_classified_readings') }}
    where
        {{ in_backfill_range('event_date', backfill) }}
        and (rejection_reason is null or rejection_reason = 'out_of_range')

),

    {%- elif is_incremental() %}

{{ gold_rebuild_window() }}

-- Device-days with readings ingested since the last build (accepted, or rejected as out_of_range).
new_readings as (

    select
        silver_readings.device_id,
        silver_readings.event_date,
        silver_readings.event_at
    from {{ ref('silver_readings') }} as silver_readings
    cross join rebuild_window
    where
        silver_readings.event_date >= rebuild_window.floor_date
        and silver_readings.ingested_at >= rebuild_window.since_ingested_at

    union all

    select
        rejected_readings.device_id,
        rejected_readings.event_date,
        rejected_readings.event_at
    from {{ ref('silver_classified_readings') }} as rejected_readings
    cross join rebuild_window
    where
        rejected_readings.rejection_reason = 'out_of_range'
        and rejected_readings.event_date >= rebuild_window.floor_date
        and rejected_readings.ingested_at >= rebuild_window.since_ingested_at

),

-- The days whose windows they can change: their own, the next context days, and the day before when
-- they lie within the z-score neighbourhood of its end.
touched_device_days as (

    {%- for shift in range(0, context_days + 1) %}
    select distinct
        device_id,
        cast({{ dbt.dateadd('day', shift, 'event_date') }} as date) as event_date
    from new_readings
    union all
    {%- endfor %}
    select distinct
        device_id,
        cast({{ dbt.dateadd('day', -1, 'event_date') }} as date) as event_date
    from new_readings
    where event_at < {{ dbt.dateadd('minute', reach_minutes, dbt.date_trunc('day', 'event_at')) }}

),

rebuild_device_days as (

    {{ anomaly_device_days_to_rebuild('touched_device_days', ref('silver_classified_readings')) }}

),

    {%- endif %}

    {%- if is_incremental() %}
    {%- set first_new_date = new_rows_first_date([ref('silver_classified_readings')]) %}

-- Per device: the first day of the context and the last rebuilt day.
context_ranges as (

    select
        device_id,
        cast({{ dbt.dateadd('day', -1 * context_days, 'min(event_date)') }} as date) as first_date,
        max(event_date) as last_date
    from rebuild_device_days
    group by device_id

),

-- The device's last reading before its context: the start of a silence that ends inside it.
context_predecessors as (

    select
        silver_readings.device_id,
        max(silver_readings.event_at) as event_at
    from {{ ref('silver_readings') }} as silver_readings
    inner join context_ranges
        on
            silver_readings.device_id = context_ranges.device_id
            and silver_readings.event_date < context_ranges.first_date
    group by silver_readings.device_id

),

readings as (

    select
        silver_readings.*,
        false as is_context_predecessor
    from {{ ref('silver_readings') }} as silver_readings
    inner join context_ranges
        on
            silver_readings.device_id = context_ranges.device_id
            and silver_readings.event_date between context_ranges.first_date and context_ranges.last_date
    {%- if first_new_date %}
    -- A literal DuckDB prunes the scan with (see new_rows_first_date): no context starts earlier.
    where silver_readings.event_date >= cast({{ dbt.dateadd('day', -1 * (context_days + 1), first_new_date) }} as date)
    {%- endif %}

    union all

    select
        silver_readings.*,
        true as is_context_predecessor
    from {{ ref('silver_readings') }} as silver_readings
    inner join context_predecessors
        on
            silver_readings.device_id = context_predecessors.device_id
            and silver_readings.event_at = context_predecessors.event_at

),

-- The readings rejected as impossible values in the same context (the device did send them: they count
-- for its cadence; the out_of_range windows of the rebuilt days come from them).
rejected_to_scan as (

    select rejected_readings.*
    from {{ ref('silver_classified_readings') }} as rejected_readings
    inner join context_ranges
        on
            rejected_readings.device_id = context_ranges.device_id
            and rejected_readings.event_date between context_ranges.first_date and context_ranges.last_date
    where rejected_readings.rejection_reason = 'out_of_range'
    {%- if first_new_date %}
        and rejected_readings.event_date >= cast({{ dbt.dateadd('day', -1 * (context_days + 1), first_new_date) }} as date)
    {%- endif %}

),

    {%- else %}

readings as (

    select
        *,
        false as is_context_predecessor
    from {{ ref('silver_readings') }}

),

rejected_to_scan as (

    select * from {{ ref('silver_classified_readings') }}
    where rejection_reason = 'out_of_range'

),

-- A full build: every device-day with readings.
rebuild_device_days as (

    select
        device_id,
        event_date
    from readings

    union

    select
        device_id,
        event_date
    from rejected_to_scan

),

    {%- endif %}
{%- endmacro %}
