{#
    The catalogue's rows (source catalogue.changes), or none with the same columns when the lake has no
    catalogue yet: `lakehouse` writes the default catalogue before dbt runs, but a plain `dbt build` on a
    fresh lake must still build (every reading is then an unknown device).
#}
{% macro catalogue_changes() -%}
    {%- if catalogue_has_files() -%}
        select * from {{ source('catalogue', 'changes') }}
    {%- else -%}
        {%- set columns = {'kind': 'varchar', 'version': 'bigint', 'recorded_at': 'timestamp',
            'valid_from': 'timestamp', 'source': 'varchar', 'device_type': 'varchar',
            'reporting_interval_s': 'double', 'silence_after_s': 'double', 'description': 'varchar',
            'metric': 'varchar', 'device_id': 'varchar', 'unit': 'varchar', 'valid_min': 'double',
            'valid_max': 'double', 'alert_min': 'double', 'alert_max': 'double', 'max_jump': 'double',
            'site_id': 'varchar', 'installed_at': 'timestamp', 'retired_at': 'timestamp'} -%}
        select
            {%- for name, type in columns.items() %}
            {#- `version` and `source` are keywords: quoted as aliases #}
            cast(null as {{ type }}) as {{ adapter.quote(name) if name in ('version', 'source') else name }}
            {{- ',' if not loop.last }}
            {%- endfor %}
        where false
    {%- endif -%}
{%- endmacro %}


{% macro catalogue_has_files() -%}
    {{ return(adapter.dispatch('catalogue_has_files', 'lakehouse')()) }}
{%- endmacro %}

{% macro default__catalogue_has_files() -%}
    {{ return(true) }}
{%- endmacro %}

{% macro duckdb__catalogue_has_files() -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set pattern = lake_root() ~ '/catalogue/changes/*.parquet' -%}
    {%- set found = run_query("select count(*) from glob('" ~ pattern | replace("'", "''") ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}


{#
    The validity intervals of one kind of catalogue row: each row is in force from its valid_from until
    the next valid_from of the same key (or `catalogue_end_of_time()`); of two rows of one key with the
    same valid_from, the later version wins. Emits the CTEs `<kind>_rows` and `<kind>_intervals`
    (each followed by a comma); `key` is the list of key columns.
#}
{% macro catalogue_intervals(kind, key) -%}

{{ kind }}_rows as (

    select
        *,
        row_number() over (
            partition by {{ key | join(', ') }}, valid_from
            order by catalogue_version desc
        ) as rank_at_valid_from

    from {{ ref('stg_catalogue__changes') }}
    where kind = '{{ kind }}'

),

{{ kind }}_intervals as (

    select
        *,
        coalesce(
            lead(valid_from) over (partition by {{ key | join(', ') }} order by valid_from),
            {{ catalogue_end_of_time() }}
        ) as valid_to

    from {{ kind }}_rows
    where rank_at_valid_from = 1

),

{%- endmacro %}


{# The valid_to of a row still in force: the contract's latest possible event time. #}
{% macro catalogue_end_of_time() -%}
    {{ timestamp_literal('2100-01-01 00:00:00') }}
{%- endmacro %}


{#
    A numeric field of a reading that is not a bronze column, from bronze's `_rescued_data` (a JSON object
    of the fields the contract does not know, values as text): a metric the catalogue declares. A value
    that is not a number gives null (its text stays in rescued_data).
#}
{% macro rescued_number(column, key) -%}
    {{ return(adapter.dispatch('rescued_number', 'lakehouse')(column, key)) }}
{%- endmacro %}

{% macro default__rescued_number(column, key) -%}
    try_cast(json_extract_scalar({{ column }}, '$["{{ key }}"]') as double)
{%- endmacro %}

{% macro duckdb__rescued_number(column, key) -%}
    try_cast(json_extract_string({{ column }}, '$."{{ key }}"') as double)
{%- endmacro %}
