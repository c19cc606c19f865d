with

classified_readings as (

    select * from {{ ref('silver_classified_readings') }}

),

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
        unit_conversion,
        ingested_at,
        source_file,
        batch_id,
        schema_version

    from classified_readings
    where rejection_reason is null

)

select * from final
