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
        site_id,
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
        schema_version,
        copy_number,
        rejection_reason,
        rejected_metric

    from classified_readings
    where rejection_reason is not null

)

select * from final
