{#- One row per bronze customer record (every update, duplicates included); epoch ms also as timestamps. -#}
with

source as (

    {{ stedi_bronze('customer', {
        'customer_name': 'varchar',
        'email': 'varchar',
        'phone': 'varchar',
        'birth_day': 'varchar',
        'serial_number': 'varchar',
        'registration_date_ms': 'bigint',
        'last_update_date_ms': 'bigint',
        'share_with_research_as_of_date_ms': 'bigint',
        'share_with_public_as_of_date_ms': 'bigint',
        'share_with_friends_as_of_date_ms': 'bigint',
    }) }}

),

renamed as (

    select
        cast(email as varchar) as email,
        cast(customer_name as varchar) as customer_name,
        cast(phone as varchar) as phone,
        cast(birth_day as varchar) as birth_day,
        cast(serial_number as varchar) as serial_number,
        cast(registration_date_ms as bigint) as registration_date_ms,
        cast(last_update_date_ms as bigint) as last_update_date_ms,
        cast(share_with_research_as_of_date_ms as bigint) as share_with_research_as_of_date_ms,
        cast(share_with_public_as_of_date_ms as bigint) as share_with_public_as_of_date_ms,
        cast(share_with_friends_as_of_date_ms as bigint) as share_with_friends_as_of_date_ms,
        {{ timestamp_from_epoch_ms('registration_date_ms') }} as registered_at,
        {{ timestamp_from_epoch_ms('last_update_date_ms') }} as last_updated_at,
        {{ timestamp_from_epoch_ms('share_with_research_as_of_date_ms') }} as research_consent_at,
        {{ bronze_metadata_columns() }},
        cast(event_date as date) as event_date

    from source

)

select * from renamed
