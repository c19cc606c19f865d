{#- One row per bronze step-trainer reading (duplicates included). -#}
with

source as (

    {{ stedi_bronze('step_trainer', {
        'sensor_reading_time_ms': 'bigint',
        'serial_number': 'varchar',
        'distance_from_object': 'double',
    }) }}

),

renamed as (

    select
        cast(serial_number as varchar) as serial_number,
        cast(sensor_reading_time_ms as bigint) as sensor_reading_time_ms,
        {{ timestamp_from_epoch_ms('sensor_reading_time_ms') }} as reading_at,
        cast(distance_from_object as double) as distance_from_object,
        {{ bronze_metadata_columns() }},
        cast(event_date as date) as event_date

    from source

)

select * from renamed
