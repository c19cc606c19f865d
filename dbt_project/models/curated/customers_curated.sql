{#-
    Trusted customers who have at least one accelerometer_trusted reading, without personal data: the
    customer is only a salted hash of the e-mail (customer_key); no name, e-mail, phone, birth date or
    device serial number.
-#}
with

trusted_customers as (

    select * from {{ ref('customer_trusted') }}

),

trusted_accelerometer as (

    select * from {{ ref('accelerometer_trusted') }}

),

final as (

    select
        {{ customer_key('customers.email') }} as customer_key,
        customers.registration_date_ms,
        customers.last_update_date_ms,
        customers.share_with_research_as_of_date_ms,
        customers.share_with_public_as_of_date_ms,
        customers.share_with_friends_as_of_date_ms,
        customers.registered_at,
        customers.last_updated_at,
        customers.research_consent_at,
        {{ consent_policy_column() }}
    from trusted_customers as customers
    where
        exists (
            select 1
            from trusted_accelerometer as accelerometer
            where accelerometer.user_email = customers.email
        )

)

select * from final
