{#
    The bronze rows of one source (`readings`, or a STEDI source `customer`, `accelerometer`,
    `step_trainer`), or no rows with the same columns when the lake has no Parquet for it yet: a plain
    sensor lake has no STEDI folders, a lake of STEDI files has no readings, and either cycle must build.
    `columns` maps each contract column to its SQL type (for the empty case); the bronze metadata columns
    every source shares are added here.
#}
{% macro stedi_bronze(table_name, columns) -%}
    {%- set relation = source('bronze', table_name) -%}
    {%- if bronze_table_has_files(table_name) -%}
        select * from {{ relation }}
    {%- else -%}
        {%- set all_columns = dict(columns) -%}
        {%- do all_columns.update({'_rescued_data': 'varchar', '_ingested_at': 'timestamp',
            '_source_file': 'varchar', '_batch_id': 'bigint', '_schema_version': 'integer',
            'event_date': 'date'}) -%}
        select
            {%- for name, type in all_columns.items() %}
            cast(null as {{ type }}) as {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        where false
    {%- endif -%}
{%- endmacro %}


{#
    Whether bronze holds Parquet for a source. DuckDB reads the files in place, and a view over a glob that
    matches nothing fails to create; Athena reads a Glue table, which is simply empty.
#}
{% macro bronze_table_has_files(table_name) -%}
    {{ return(adapter.dispatch('bronze_table_has_files', 'lakehouse')(table_name)) }}
{%- endmacro %}

{% macro default__bronze_table_has_files(table_name) -%}
    {{ return(true) }}
{%- endmacro %}

{% macro duckdb__bronze_table_has_files(table_name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set pattern = lake_root() ~ '/bronze/' ~ table_name ~ '/*/*.parquet' -%}
    {%- set found = run_query("select count(*) from glob('" ~ pattern | replace("'", "''") ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}


{# An epoch-milliseconds bigint as a UTC timestamp. #}
{% macro timestamp_from_epoch_ms(milliseconds) -%}
    {{ return(adapter.dispatch('timestamp_from_epoch_ms', 'lakehouse')(milliseconds)) }}
{%- endmacro %}

{% macro default__timestamp_from_epoch_ms(milliseconds) -%}
    cast(to_timestamp(cast({{ milliseconds }} as double) / 1000) as timestamp)
{%- endmacro %}

{% macro duckdb__timestamp_from_epoch_ms(milliseconds) -%}
    epoch_ms(cast({{ milliseconds }} as bigint))
{%- endmacro %}

{% macro athena__timestamp_from_epoch_ms(milliseconds) -%}
    cast(from_unixtime(cast({{ milliseconds }} as double) / 1000) as timestamp)
{%- endmacro %}


{#
    The columns every bronze table shares (spark/transform.py writes them on every row), renamed and
    cast the same way in every staging model. Renders a select list without a trailing comma.
#}
{% macro bronze_metadata_columns() -%}
        cast(_rescued_data as varchar) as rescued_data,
        cast(_ingested_at as timestamp) as ingested_at,
        cast(_source_file as varchar) as source_file,
        cast(_batch_id as bigint) as batch_id,
        cast(_schema_version as integer) as schema_version
{%- endmacro %}
