with

source as (

    {#- A lake may hold only other sources (e.g. STEDI files brought with `lakehouse ingest-files`). -#}
    {%- set columns = {'device_id': 'varchar', 'device_type': 'varchar', 'site_id': 'varchar',
        'event_time': 'timestamp', 'seq': 'bigint'} -%}
    {%- for metric in var('bronze_metrics') %}{% do columns.update({metric: 'double'}) %}{% endfor -%}
    {%- do columns.update({'battery_pct': 'double', 'firmware': 'varchar'}) -%}
    {{ stedi_bronze('readings', columns) }}

),

renamed as (

    select
        cast(device_id as varchar) as device_id,
        cast(device_type as varchar) as device_type,
        cast(site_id as varchar) as site_id,
        cast(event_time as timestamp) as event_at,
        cast(event_date as date) as event_date,
        cast(seq as bigint) as seq,
        {%- for metric in var('metrics') %}
        {%- if metric in var('bronze_metrics') %}
        cast({{ metric }} as double) as {{ metric }},
        {%- else %}
        {{ rescued_number('_rescued_data', metric) }} as {{ metric }},
        {%- endif %}
        {%- endfor %}
        cast(battery_pct as double) as battery_pct,
        cast(firmware as varchar) as firmware,
        {{ bronze_metadata_columns() }}

    from source

)

select * from renamed
