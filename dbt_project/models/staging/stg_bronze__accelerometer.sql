{#- One row per bronze accelerometer reading (duplicates included). -#}
with

source as (

    {{ stedi_bronze('accelerometer', {
        'user_email': 'varchar',
        'timestamp_ms': 'bigint',
        'x': 'double',
        'y': 'double',
        'z': 'double',
    }) }}

),

renamed as (

    select
        cast(user_email as varchar) as user_email,
        cast(timestamp_ms as bigint) as timestamp_ms,
        {{ timestamp_from_epoch_ms('timestamp_ms') }} as reading_at,
        cast(x as double) as x,
        cast(y as double) as y,
        cast(z as double) as z,
        {{ bronze_metadata_columns() }},
        cast(event_date as date) as event_date

    from source

)

select * from renamed
