with

classified_readings as (

    select * from {{ ref('silver_classified_readings') }}

),

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
        unit_conversion,
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
