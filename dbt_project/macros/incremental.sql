{#
    Incremental models rebuild whole units (a device-day, a device-hour) from their inputs; a unit is
    either rebuilt completely or left alone, so an incremental build and a full refresh over the same data
    give the same table.

    DuckDB: `replace_units` (below), a delete+insert on the unit's key: exactly the changed units are
    rebuilt.
    Athena: Hive tables partitioned by `event_date`, `insert_overwrite`: a changed unit rewrites its whole
    date partition, so every unit of a touched date is rebuilt (same result, coarser work). Iceberg is not
    used so that the tables stay readable by any Hive-compatible engine over the lake.
#}
{#
    `on_schema_change`: 'fail' (a release that changes a model's columns needs a full refresh), or
    'append_new_columns' for silver_classified_readings, whose metric columns are the catalogue's: a newly
    declared metric adds a column, null for rows built before (a backfill fills it in).
#}
{% macro incremental_config(unique_key, partition_by='event_date', on_schema_change='fail') -%}
    {{ return(adapter.dispatch('incremental_config', 'lakehouse')(unique_key, partition_by, on_schema_change)) }}
{%- endmacro %}

{% macro default__incremental_config(unique_key, partition_by, on_schema_change) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'replace_units',
        'unique_key': unique_key,
        'on_schema_change': on_schema_change,
    }) }}
{%- endmacro %}

{% macro athena__incremental_config(unique_key, partition_by, on_schema_change) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'insert_overwrite',
        'table_type': 'hive',
        'format': 'parquet',
        'partitioned_by': [partition_by],
        'on_schema_change': on_schema_change,
    }) }}
{%- endmacro %}


{#
    Which units an incremental run rebuilds, given a boolean SQL condition saying that a unit changed.
    DuckDB rebuilds just those; Athena rebuilds every unit of a touched date partition.
#}
{% macro changed_units(changed_condition) -%}
    {{ return(adapter.dispatch('changed_units', 'lakehouse')(changed_condition)) }}
{%- endmacro %}

{% macro default__changed_units(changed_condition) -%}
    ({{ changed_condition }})
{%- endmacro %}

{% macro athena__changed_units(changed_condition) -%}
    (true)
{%- endmacro %}


{# A SQL list of date literals, for `event_date in (...)` (partition pruning needs literals). #}
{% macro date_list(dates) -%}
    {%- if dates | length == 0 -%}
        (cast(null as date))
    {%- else -%}
        ({% for d in dates %}cast('{{ d }}' as date){{ ', ' if not loop.last }}{% endfor %})
    {%- endif -%}
{%- endmacro %}


{# The first column of a query's rows as strings; empty when dbt is only parsing. #}
{% macro query_column(sql) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set result = run_query(sql) -%}
    {{ return(result.columns[0].values() | map('string') | list) }}
{%- endmacro %}


{# The first value of a query, or none. #}
{% macro query_value(sql) -%}
    {%- set values = query_column(sql) -%}
    {{ return(values[0] if values and values[0] not in ('None', '') else none) }}
{%- endmacro %}


{#
    Incremental strategy `replace_units` (DuckDB): delete+insert on `unique_key` (the unit, e.g.
    device_id and event_date), with two differences from dbt's own:
    - the delete is a semi-join (`where exists`): dbt-duckdb's delete+insert on a compound key joins
      every target row with every new row of its unit, which is quadratic in the unit's size;
    - with config `row_id`, the model may also emit *scope rows*, one per rebuilt unit, whose row_id is
      null: their unit is cleared but they are not inserted. So a unit left without any row (late data
      filled a gap: its data_gap anomaly must go) is cleared too;
    - during a backfill (vars backfill_from / backfill_to, see backfill.sql) every row of the range's
      event dates is cleared, in the same statement.
    The models have an `event_date` column, and a unit lies within one event date.
    Athena has no row-level delete on Hive tables and overwrites whole partitions instead (see
    incremental_config), where scope rows are not emitted.
#}
{% macro get_incremental_replace_units_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set unit_key = arg_dict['unique_key'] -%}
    {%- set row_id = config.get('row_id') -%}
    {%- if not unit_key -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'replace_units' needs config unique_key (the unit that is replaced) in model "
            ~ model.name) }}
    {%- endif -%}
    {%- set unit_key = [unit_key] if unit_key is string else unit_key -%}
    {%- set dest_cols_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set backfill = backfill_range() %}
    delete from {{ target }} as target_rows
    where (
        -- The event dates first: a cheap filter that spares the semi-join every row of other dates.
        target_rows.event_date in (select distinct source_rows.event_date from {{ source }} as source_rows)
        and exists (
            select 1 from {{ source }} as source_rows
            where {% for key in unit_key %}source_rows.{{ key }} = target_rows.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        )
    )
    {%- if backfill %}
    -- A backfill replaces every unit of its date range, also those it leaves without rows.
    or {{ in_backfill_range('target_rows.event_date', backfill) }}
    {%- endif %};

    insert into {{ target }} ({{ dest_cols_csv }})
    select {{ dest_cols_csv }} from {{ source }}
    {%- if row_id %}
    where {{ row_id }} is not null
    {%- endif %}
{%- endmacro %}


{# The incremental config of a model whose units can disappear (scope rows, see replace_units). #}
{% macro replaceable_units_config(unique_key, row_id, partition_by='event_date') -%}
    {{ return(adapter.dispatch('replaceable_units_config', 'lakehouse')(unique_key, row_id, partition_by)) }}
{%- endmacro %}

{% macro default__replaceable_units_config(unique_key, row_id, partition_by) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'replace_units',
        'unique_key': unique_key,
        'row_id': row_id,
        'on_schema_change': 'fail',
    }) }}
{%- endmacro %}

{% macro athena__replaceable_units_config(unique_key, row_id, partition_by) -%}
    {{ return(athena__incremental_config(unique_key, partition_by, 'fail')) }}
{%- endmacro %}


{# Whether incremental models emit scope rows (replace_units): yes on DuckDB, not on Athena. #}
{% macro emits_scope_rows() -%}
    {{ return(adapter.dispatch('emits_scope_rows', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__emits_scope_rows() -%}
    {{ return(true) }}
{%- endmacro %}

{% macro athena__emits_scope_rows() -%}
    {{ return(false) }}
{%- endmacro %}


{#
    Where an incremental gold build starts looking: silver rows ingested at or after the newest ingest
    time the table already holds (`since_ingested_at`, "at or after" so that a batch that was half
    visible last time is looked at again), not older than the table's newest event date minus
    var('lookback_days') and one more day (`floor_date`). Emits one CTE, `rebuild_window`, and a comma.
#}
{% macro gold_rebuild_window(date_column='event_date') -%}
rebuild_window as (

    {{ rebuild_window_select(date_column) }}

),
{%- endmacro %}

{% macro rebuild_window_select(date_column='event_date') -%}
    select
        coalesce(max(last_ingested_at), cast('1900-01-01 00:00:00' as timestamp)) as since_ingested_at,
        coalesce(
            cast({{ dbt.dateadd('day', -1 * (var('lookback_days') + 1), 'max(' ~ date_column ~ ')') }} as date),
            cast('1900-01-01' as date)
        ) as floor_date
    from {{ this }}
{%- endmacro %}


{#
    The earliest event date among the rows of `relations` (silver_readings, silver_rejected_readings)
    that an incremental gold build looks at (see gold_rebuild_window), as a SQL date literal: a filter
    on it lets DuckDB skip the older part of silver, which it does not do for the window's own subquery
    (a nested-loop join after a full scan). Only a hint: the models' conditions decide which rows count,
    and every row they take is at least this new. '9999-12-31' when nothing is new (nothing to rebuild);
    `none` when the build looks at no new rows (a full build or a backfill), in a unit test (its `this`
    is a fixture, not a table to query) and while dbt parses.
#}
{% macro new_rows_first_date(relations) -%}
    {%- if not execute or model.resource_type == 'unit_test' or not is_incremental() or backfill_range() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set first_date_sql -%}
        with rebuild_window as ({{ rebuild_window_select() }})
        select min(new_rows.event_date)
        from (
            {%- for relation in relations %}
            select candidate_rows.event_date
            from {{ relation }} as candidate_rows
            cross join rebuild_window
            where
                candidate_rows.event_date >= rebuild_window.floor_date
                and candidate_rows.ingested_at >= rebuild_window.since_ingested_at
            {{ 'union all' if not loop.last }}
            {%- endfor %}
        ) as new_rows
    {%- endset -%}
    {%- set first_date = query_value(first_date_sql) or '9999-12-31' -%}
    {{ return("cast('" ~ first_date ~ "' as date)") }}
{%- endmacro %}
