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
        cast(_rescued_data as varchar) as rescued_data,
        cast(_ingested_at as timestamp) as ingested_at,
        cast(_source_file as varchar) as source_file,
        cast(_batch_id as bigint) as batch_id,
        cast(_schema_version as integer) as schema_version,
        cast(event_date as date) as event_date

    from source

)

select * from renamed
