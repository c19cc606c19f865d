{#
    The late-data rule of the gold aggregates: which (device, period) units an incremental run
    re-aggregates. Candidates are the periods of silver readings ingested at or after the newest ingest
    time the table holds (at or after: a bronze batch that an earlier build read half-published is looked
    at again) and not older than the lookback (see gold_rebuild_window). Of those, exactly the ones whose
    silver values differ from what the table aggregated (count of values or newest ingest time) are
    rebuilt: new, late or re-published readings.

    `silver` is the silver_readings relation (ref('silver_readings')), read directly by each CTE that
    needs it, aliased `silver_readings`: a CTE that several others read is materialized whole by DuckDB,
    which costs more than the whole incremental run. `period_sql` is the period of one of its rows
    (written against `silver_readings`), `period_column` the table's column holding the period.
    Emits CTEs (each followed by a comma) ending in `changed_periods` (device_id, event_date, period_at).
#}
{% macro changed_periods(silver, period_sql, period_column) -%}

{{ gold_rebuild_window() }}

candidate_periods as (

    select distinct
        silver_readings.device_id,
        silver_readings.event_date,
        {{ period_sql }} as period_at
    from {{ silver }} as silver_readings
    cross join rebuild_window
    where
        silver_readings.event_date >= rebuild_window.floor_date
        and silver_readings.ingested_at >= rebuild_window.since_ingested_at

),

silver_signatures as (

    select
        candidate_periods.device_id,
        candidate_periods.event_date,
        candidate_periods.period_at,
        sum(
            {%- for metric in var('metrics') %}
            case when silver_readings.{{ metric }} is null then 0 else 1 end{{ ' +' if not loop.last }}
            {%- endfor %}
        ) as value_count,
        max(silver_readings.ingested_at) as last_ingested_at
    from {{ silver }} as silver_readings
    inner join candidate_periods
        on
            silver_readings.device_id = candidate_periods.device_id
            and silver_readings.event_date = candidate_periods.event_date
            and {{ period_sql }} = candidate_periods.period_at
    -- Said again here, on the scan itself: without it DuckDB aggregates all of silver before the join.
    where silver_readings.event_date >= (select rebuild_window.floor_date from rebuild_window)
    group by candidate_periods.device_id, candidate_periods.event_date, candidate_periods.period_at

),

aggregated_signatures as (

    select
        device_id,
        {{ period_column }} as period_at,
        sum(reading_count) as value_count,
        max(last_ingested_at) as last_ingested_at
    from {{ this }}
    where event_date >= (select rebuild_window.floor_date from rebuild_window)
    group by device_id, {{ period_column }}

),

changed_periods as (

    select
        silver_signatures.device_id,
        silver_signatures.event_date,
        silver_signatures.period_at
    from silver_signatures
    left join aggregated_signatures
        on
            silver_signatures.device_id = aggregated_signatures.device_id
            and silver_signatures.period_at = aggregated_signatures.period_at
    where
        aggregated_signatures.device_id is null
        or silver_signatures.value_count <> aggregated_signatures.value_count
        or silver_signatures.last_ingested_at <> aggregated_signatures.last_ingested_at

),

{%- endmacro %}
