with

bronze_readings as (

    select * from {{ ref('stg_bronze__readings') }}

),

device_registry as (

    select * from {{ ref('device_registry') }}

),

metric_limits as (

    select * from {{ ref('metric_limits') }}

),

{{ classify_readings('bronze_readings', 'device_registry', 'metric_limits') }}

final as (

    select
        device_id,
        device_type,
        registered_site_id as site_id,
        event_at,
        event_date,
        seq,
        {%- for metric in var('metrics') %}
        {{ metric }},
        {%- endfor %}
        battery_pct,
        firmware,
        ingested_at,
        source_file,
        batch_id,
        schema_version

    from classified_readings
    where rejection_reason is null

)

select * from final
