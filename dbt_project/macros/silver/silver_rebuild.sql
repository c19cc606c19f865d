{#
    Which bronze event dates an incremental build of silver_classified_readings must look at: those, not
    older than the lookback, that hold a device-day whose bronze row count differs from its classified
    row count (new rows arrived; bronze never loses rows). The lookback floor is the newest accepted
    event date already in silver minus var('lookback_days'): later-arriving data for older dates is
    left for a full refresh (`dbt build --full-refresh`, `lakehouse transform --full-refresh`).
    Returns a list of 'YYYY-MM-DD' strings; [] when nothing changed.
#}
{% macro silver_dates_to_rebuild(bronze_readings) -%}
    {%- set floor_date = query_value(
        "select cast(" ~ dbt.dateadd('day', -1 * var('lookback_days'), 'max(event_at)') ~ " as date) from "
        ~ this ~ " where rejection_reason is null"
    ) -%}
    {%- set floor_filter = "event_date >= cast('" ~ floor_date ~ "' as date)" if floor_date else "true" -%}
    {%- set changed_dates_sql -%}
        with

        bronze_device_days as (
            select event_date, device_id, count(*) as bronze_rows
            from {{ bronze_readings }}
            where {{ floor_filter }}
            group by event_date, device_id
        ),

        classified_device_days as (
            select event_date, device_id, count(*) as classified_rows
            from {{ this }}
            where {{ floor_filter }}
            group by event_date, device_id
        )

        select distinct bronze_device_days.event_date
        from bronze_device_days
        left join classified_device_days
            on
                bronze_device_days.event_date = classified_device_days.event_date
                and bronze_device_days.device_id = classified_device_days.device_id
        where
            classified_device_days.classified_rows is null
            or classified_device_days.classified_rows <> bronze_device_days.bronze_rows
        order by 1
    {%- endset -%}
    {%- set dates = query_column(changed_dates_sql) -%}
    {%- do log("silver_classified_readings: rebuilding event dates " ~ (dates | join(', ') or 'none')
               ~ " (lookback floor " ~ (floor_date or 'none') ~ ")", info=true) if execute -%}
    {{ return(dates) }}
{%- endmacro %}
